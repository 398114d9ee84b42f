"""Docker-free local runtime and tools; never deployed.

It runs from a checkout, with ``src/`` importable as Lambda makes a function's ``CodeUri`` the root
of its package, so ``python -m local`` works without installing anything of ours.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
