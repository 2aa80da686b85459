"""With tls_certfile/tls_keyfile set, workers connect to the controller over TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFORMANCE = str(Path(__file__).parent.parent / "conformance")

SCRIPT = f"""
import sys
sys.path.insert(0, {CONFORMANCE!r})
import jupyter_remote as jr, conformance_funcs as funcs
app = jr.App("tls")
f = app.function()(funcs.square)
print("result", f.remote(6))
from jupyter_remote.controller import controller
pool = next(iter(controller().pools.values()))
conn = next(iter(pool.workers.values())).conn
print("cipher", conn.transport.get_extra_info("cipher"))
"""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_workers_connect_over_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "JUPYTER_REMOTE_TLS_CERTFILE": str(cert),
        "JUPYTER_REMOTE_TLS_KEYFILE": str(key),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "result 36" in proc.stdout
    assert "cipher ('TLS" in proc.stdout
