"""Where the app server keeps its state on this machine, and where deployments are stored.

- The **state directory** (mode 0700): ``$JUPYTER_REMOTE_STATE_DIR``, else
  ``$XDG_STATE_HOME/jupyter_remote`` (``~/.local/state/jupyter_remote``). It
  holds ``server.json`` (mode 0600: pid, port and the client token of the
  running app server), ``server.log`` and ``logs/<app>.log`` (what the
  deployed functions printed).
- The **deployment store** (an fsspec URL): setting ``deployments_url``
  (``JUPYTER_REMOTE_DEPLOYMENTS_URL``), else ``deployments`` beside the
  volumes' default directory (``~/.local/share/jupyter_remote/deployments``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError

__all__ = [
    "default_deployments_url",
    "read_state",
    "remove_state",
    "state_dir",
    "state_file",
    "write_private",
]


def state_dir() -> Path:
    """The user's app-server state directory, created with mode 0700."""
    explicit = os.environ.get("JUPYTER_REMOTE_STATE_DIR")
    if explicit:
        path = Path(explicit)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "jupyter_remote"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # it holds the client token: nobody else may list it
    except OSError as exc:
        raise ConfigError(
            f"cannot create the app server's state directory {path}: {exc}; set "
            "JUPYTER_REMOTE_STATE_DIR to a directory you own"
        ) from exc
    return path


def state_file() -> Path:
    return state_dir() / "server.json"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates the file 0600
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_state() -> dict[str, Any] | None:
    """The running app server's state file (pid, port, token), or None if there is none."""
    try:
        value = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def remove_state(pid: int) -> None:
    """Remove the state file if it is still the one process ``pid`` wrote."""
    state = read_state()
    if state is not None and state.get("pid") == pid:
        with contextlib.suppress(OSError):
            state_file().unlink()


def default_deployments_url() -> str:
    """The deployment store's URL: the ``deployments_url`` setting, else beside the volumes."""
    from ..config import load_settings
    from ..state._volumes import default_volumes_url

    url = load_settings().deployments_url
    if url:
        return url
    volumes = default_volumes_url().rstrip("/")
    parent = volumes.rsplit("/", 1)[0] if "/" in volumes else "."
    return f"{parent}/deployments"
