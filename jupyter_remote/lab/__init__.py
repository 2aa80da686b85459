"""The Jupyter server extension: a REST API for the JupyterLab sidebar (``labextension/``).

Enabled on install by ``jupyter-config/jupyter_server_config.d/jupyter_remote.json``
(``jupyter server extension list`` names it). Its handlers live under
``<base_url>/jupyter-remote/api/`` and call the stores the CLI uses
(``state/``): volumes (``_volumes``), secrets (``_secrets``), and where work runs
and what runs there (``_running``). Every verb needs the server's token or
login cookie (and, with the cookie, its XSRF token), like the rest of Jupyter's API.

>>> # jupyter lab, then:
>>> # curl -H "Authorization: token $TOKEN" http://localhost:8888/jupyter-remote/api/volumes
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from . import _running, _secrets, _volumes

__all__ = ["API_PATH"]

API_PATH = "jupyter-remote/api"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_remote.lab"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "../labextension", "dest": "jupyter-remote"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    web_app = server_app.web_app
    api = url_path_join(web_app.settings["base_url"], API_PATH)
    handlers: list[tuple[str, Any]] = []
    for module in (_volumes, _secrets, _running):
        handlers += module.routes(api)
    web_app.add_handlers(".*$", handlers)
    server_app.log.info("jupyter_remote: the sidebar's API is at %s/", api)
