"""``call.logs()`` of a real ``.map`` keeps at most ``log_lines`` lines and says what it dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")

CALLER = """
import json, sys
sys.path.insert(0, {path!r})
import jupyter_remote as jr

app = jr.App("log-lines")

@app.function()
def chatty(x):
    for j in range(30):
        print(f"input {{x}} line {{j}}")
    return x

seen = []
with app.run():
    for n in (20, 200):  # 600 lines, then 6,000: the held structure stays the same size
        call = chatty.map(range(n))
        assert list(call) == list(range(n))
        logs = call._reader.call.logs
        text = call.logs()
        seen.append({{"held": len(logs), "entries": len(logs.lines()), "dropped": logs.dropped,
                      "first": text.splitlines()[0], "lines": len(text.splitlines())}})
print(json.dumps(seen))
"""


def test_map_logs_keep_the_configured_number_of_lines() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CALLER.format(path=CONFORMANCE))],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "JUPYTER_REMOTE_LOG_LINES": "50"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    small, big = json.loads(proc.stdout.splitlines()[-1])
    assert small == {
        "held": 50,
        "entries": small["entries"],
        "dropped": 550,
        "first": "[550 earlier lines dropped; the last 50 kept (setting log_lines)]",
        "lines": 51,
    }
    assert small["entries"] <= 50
    assert big["held"] == 50 and big["dropped"] == 5_950 and big["lines"] == 51
    assert big["entries"] <= 50
