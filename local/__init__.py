"""Docker-free local runtime and tools; never deployed.

It runs from a checkout, with ``src/`` importable as Lambda makes a function's ``CodeUri`` the root
of its package, so ``python -m local`` works without installing anything of ours but the client.

Nothing here imports a third-party package at import time: ``missing_packages()`` must be able to
say what is missing before anything needs it.
"""

import importlib.util
import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

REQUIRED_MODULES = {
    "boto3": "boto3",
    "moto": "moto",
    "flask": "flask (moto[server])",
    "flask_cors": "flask-cors (moto[server])",
    "werkzeug": "werkzeug (moto[server])",
    "samtranslator": "aws-sam-translator",
    "yaml": "PyYAML",
    "requests": "requests",
    "websockets": "websockets",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "matplotlib": "matplotlib",
    "reportlab": "reportlab",
    "async_reports_client": "async-reports-client (client/)",
}
"""What the local runtime and the functions it runs import: module -> the package that provides it."""
INSTALL_HINT = "run `make install` (or `pip install -r requirements.txt` in the environment you use)"


def missing_packages() -> list[str]:
    """The packages of ``REQUIRED_MODULES`` this Python cannot import, found without importing them."""
    missing = []
    for module, package in REQUIRED_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing
