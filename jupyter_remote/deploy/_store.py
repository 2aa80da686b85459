"""The deployment store: each app's deployment and history under one fsspec URL.

Layout::

    <url>/apps/<app>/deployment.pkl     the live Deployment (replaced atomically)
    <url>/apps/<app>/history.jsonl      one JSON line per deploy and stop
    <url>/apps/<app>/schedules/<fn>.json a schedule's state: next fire, paused, the run going
    <url>/apps/<app>/runs/<run id>.json  one record per scheduled run (and .log: its output)

On a local path the directories are mode 0700 and the files 0600: a
deployment holds the secret values its functions were deployed with. A
deployment is written to a temporary name and renamed over the old one, so a
reader (an app server restarted after kill -9) sees the old one or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, NotFoundError
from ..protocol import Payload, dumps, loads
from ..runtime._mounts import local_root
from ._model import Deployment
from ._paths import default_deployments_url, write_private

__all__ = ["DeploymentStore", "validate_app_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def validate_app_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a valid app name to deploy: use 1 to 63 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit"
        )
    return name


class DeploymentStore:
    """Deployments under ``url`` (default: the ``deployments_url`` setting, beside volumes)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = (url or default_deployments_url()).rstrip("/")
        self._root = local_root(self.url)

    def __repr__(self) -> str:
        return f"<DeploymentStore {self.url}>"

    # -- paths ---------------------------------------------------------------------

    def _app_dir(self, app: str) -> str:
        return f"{self.url}/apps/{validate_app_name(app)}"

    def _fs(self) -> Any:
        import fsspec

        fs, _ = fsspec.core.url_to_fs(self.url)
        return fs

    def _local_dir(self, app: str) -> Path | None:
        if self._root is None:
            return None
        path = Path(self._root) / "apps" / validate_app_name(app)
        for p in (Path(self._root), path.parent, path):
            p.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    # -- deployments -----------------------------------------------------------------

    def write(self, deployment: Deployment) -> None:
        """Replace the app's deployment (atomically) and record the deploy in its history."""
        payload = dumps(deployment)
        data = bytes(payload.data) if not payload.buffers else None
        if data is None:
            raise ConfigError(f"the deployment of {deployment.app} holds out-of-band buffers")
        local = self._local_dir(deployment.app)
        if local is not None:
            write_private(local / "deployment.pkl", data)
        else:
            fs = self._fs()
            base = self._app_dir(deployment.app)
            fs.makedirs(base, exist_ok=True)
            tmp = f"{base}/.deployment.{uuid.uuid4().hex}.pkl"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, f"{base}/deployment.pkl")
        summary = deployment.summary()
        self.record(deployment.app, {"event": "deploy", **summary})

    def read(self, app: str) -> Deployment:
        """The app's live deployment; ``NotFoundError`` naming the deployed apps if none."""
        try:
            data = self._read_bytes(f"{self._app_dir(app)}/deployment.pkl", app)
        except FileNotFoundError:
            names = ", ".join(self.apps()) or "none"
            raise NotFoundError(
                f"no app {app!r} is deployed (deployed apps: {names}); deploy it with "
                f"`jupyter-remote deploy FILE` or app.deploy()"
            ) from None
        deployment = loads(Payload(data, []))
        if not isinstance(deployment, Deployment):
            raise ConfigError(f"{self.url}: the deployment of {app} is not a deployment")
        return deployment

    def _read_bytes(self, url: str, app: str) -> bytes:
        local = self._local_dir(app)
        if local is not None:
            return (local / url.rsplit("/", 1)[1]).read_bytes()
        with self._fs().open(url, "rb") as f:
            data: bytes = f.read()
            return data

    def apps(self) -> list[str]:
        """The names of the deployed apps."""
        if self._root is not None:
            base = Path(self._root) / "apps"
            if not base.is_dir():
                return []
            return sorted(p.name for p in base.iterdir() if (p / "deployment.pkl").is_file())
        fs = self._fs()
        found = fs.glob(f"{self.url}/apps/*/deployment.pkl")
        return sorted(str(p).rstrip("/").split("/")[-2] for p in found)

    def remove(self, app: str) -> None:
        """Remove the app's deployment (its history stays)."""
        local = self._local_dir(app)
        if local is not None:
            try:
                os.unlink(local / "deployment.pkl")
            except FileNotFoundError:
                raise self._missing(app) from None
        else:
            fs = self._fs()
            path = f"{self._app_dir(app)}/deployment.pkl"
            if not fs.exists(path):
                raise self._missing(app)
            fs.rm(path)
        self.record(app, {"event": "stop"})

    def _missing(self, app: str) -> NotFoundError:
        names = ", ".join(self.apps()) or "none"
        return NotFoundError(f"no app {app!r} is deployed (deployed apps: {names})")

    # -- small files: schedule states and run records ----------------------------------

    def put(self, app: str, rel: str, data: bytes) -> None:
        """Write ``apps/<app>/<rel>`` atomically (0600 on a local path)."""
        local = self._local_dir(app)
        if local is not None:
            path = local / rel
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(path, data)
            return
        fs = self._fs()
        url = f"{self._app_dir(app)}/{rel}"
        fs.makedirs(url.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{url}.{uuid.uuid4().hex}.tmp"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, url)

    def get(self, app: str, rel: str) -> bytes:
        """The bytes of ``apps/<app>/<rel>``; ``FileNotFoundError`` if there are none."""
        local = self._local_dir(app)
        if local is not None:
            return (local / rel).read_bytes()
        with self._fs().open(f"{self._app_dir(app)}/{rel}", "rb") as f:
            data: bytes = f.read()
            return data

    def names(self, app: str, folder: str, suffix: str) -> list[str]:
        """The names (without ``suffix``) of the files in ``apps/<app>/<folder>``."""
        local = self._local_dir(app)
        if local is not None:
            base = local / folder
            if not base.is_dir():
                return []
            return sorted(p.name[: -len(suffix)] for p in base.iterdir() if p.name.endswith(suffix))
        fs = self._fs()
        found = fs.glob(f"{self._app_dir(app)}/{folder}/*{suffix}")
        return sorted(str(p).rsplit("/", 1)[-1][: -len(suffix)] for p in found)

    def get_json(self, app: str, rel: str) -> dict[str, Any] | None:
        try:
            value = json.loads(self.get(app, rel))
        except FileNotFoundError:
            return None
        return value if isinstance(value, dict) else None

    def put_json(self, app: str, rel: str, value: dict[str, Any]) -> None:
        self.put(app, rel, json.dumps(value).encode())

    # -- history ----------------------------------------------------------------------

    def record(self, app: str, event: dict[str, Any]) -> None:
        line = json.dumps({"time": time.time(), **event}) + "\n"
        local = self._local_dir(app)
        if local is not None:
            path = local / "history.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(line)
            return
        fs = self._fs()
        url = f"{self._app_dir(app)}/history.jsonl"
        old = fs.cat_file(url).decode() if fs.exists(url) else ""
        fs.pipe_file(url, (old + line).encode())

    def history(self, app: str) -> list[dict[str, Any]]:
        try:
            text = self._read_bytes(f"{self._app_dir(app)}/history.jsonl", app).decode()
        except FileNotFoundError:
            raise self._missing(app) from None
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def next_version(self, app: str) -> int:
        try:
            events = self.history(app)
        except NotFoundError:
            return 1
        versions = [int(e.get("version", 0)) for e in events if e.get("event") == "deploy"]
        return max(versions, default=0) + 1
