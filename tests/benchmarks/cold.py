"""One cold-start trial in a fresh interpreter: ``python cold.py PEER`` prints ``{"seconds": ...}``.

``run.py`` starts this script once per trial so that nothing (no controller
thread, no scheduler, no worker) is left over from an earlier trial. The
peer's library is imported before the clock starts: the measurement is from
creating the executor / app / cluster to the first result.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
os.environ.setdefault("JUPYTER_REMOTE_PROGRESS", "0")


def main(argv: list[str]) -> int:
    from peers import PEERS

    (name,) = argv
    seconds = PEERS[name].cold_first_result()
    print(json.dumps({"seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
