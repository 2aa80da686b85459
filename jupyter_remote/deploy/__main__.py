"""``python -m jupyter_remote.deploy serve``: run the app server in this process."""

from __future__ import annotations

import sys

from ._server import serve

if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        print("usage: python -m jupyter_remote.deploy serve", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve())
