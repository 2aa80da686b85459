"""What ships: the lock file names no registry, the build output is not committed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_the_lock_file_names_no_registry() -> None:
    lock = json.loads((ROOT / "labextension" / "package-lock.json").read_text())
    packages = lock["packages"]
    assert "node_modules/@jupyterlab/application" in packages
    assert not [name for name, entry in packages.items() if "resolved" in entry]


def test_the_build_output_is_ignored_by_git() -> None:
    for built in ("jupyter_remote/labextension/package.json", "labextension/lib/index.js"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", built], cwd=ROOT, capture_output=True, check=False
        )
        assert ignored.returncode == 0, f"{built} would be committed"
