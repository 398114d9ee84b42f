"""What the client uses when nothing else is given: the local runtime (`make run`) and its dev keys.

The local runtime imports these too, so the CLI without flags and `make run` always agree.
"""

from __future__ import annotations

import base64

LOCAL_API_URL = "http://127.0.0.1:3000"
LOCAL_API_KEY = "local-dev-key"
LOCAL_TENANT = "local"
# Not a secret: a fixed key so that local webhooks verify out of the box. Deployed stacks sign with
# the key in Secrets Manager (see the README for how to get it).
LOCAL_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"async-reports local development key").decode()

URL_VARIABLE = "ASYNC_REPORTS_URL"
API_KEY_VARIABLE = "ASYNC_REPORTS_API_KEY"
WEBHOOK_SECRET_VARIABLE = "ASYNC_REPORTS_WEBHOOK_SECRET"
