"""What every handler shares: JSON in and out, our errors as JSON, blocking work off the loop.

Errors are translated here, once::

    exception                                  HTTP  where it comes from
    -----------------------------------------  ----  ------------------------------------------
    ApiError (bad request body or query)       400   this package's handlers
    NotFoundError, FileNotFoundError           404   no volume, secret, job or file of that name
    AlreadyExistsError, FileExistsError,       409   a volume, secret or file in the way
      IsADirectoryError, NotADirectoryError
    ConfigError                                400   a bad name, path, key or value
    NotSupportedError                          501   not served (yet)
    BackendError (Nomad unreachable, denied)   502   the backend: the body says which and why
    any other JupyterRemoteError or OSError    500   the message is the error's own

The body is ``{"message": ..., "error": <exception class name>}``; ``message``
is the same sentence the CLI prints, which says what to do next. Messages from
the stores never hold a secret's value (``state._secrets``), and the handlers
never put a request body into one.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..exceptions import (
    AlreadyExistsError,
    BackendError,
    ConfigError,
    JupyterRemoteError,
    NotFoundError,
    NotSupportedError,
)

__all__ = ["ApiError", "Handler", "blocking"]

T = TypeVar("T")


class ApiError(ConfigError):
    """A request this API cannot take: its body or query is malformed (HTTP 400)."""


_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (FileNotFoundError, 404),
    (FileExistsError, 409),
    (IsADirectoryError, 409),
    (NotADirectoryError, 409),
    (ConfigError, 400),
    (NotSupportedError, 501),
    (BackendError, 502),
    (JupyterRemoteError, 500),
    (OSError, 500),
)


def status_for(exc: BaseException) -> int | None:
    """The HTTP status of one of our errors; None for anything else (a bug: 500, no message)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return None


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in a thread: the stores and the Nomad client block (files, HTTP)."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(fn, *args, **kwargs)
    )


class Handler(APIHandler):
    """An API handler whose errors from this package become ``{"message", "error"}`` JSON."""

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(value))

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; ``ApiError`` otherwise (never echoing the body)."""
        try:
            body = json.loads(self.request.body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError("the request body is not JSON; send a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(f"the request body must be a JSON object, not {type(body).__name__}")
        return body

    def flag(self, name: str) -> bool:
        """A boolean query argument: ``?force=1`` (or true, yes)."""
        value = self.get_query_argument(name, "0")
        return value.lower() in ("1", "true", "yes", "on")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info[1] if exc_info else None
        if exc is not None and not isinstance(exc, web.HTTPError) and status_for(exc) is not None:
            self.set_header("Content-Type", "application/json")
            body = {"message": str(exc), "error": type(exc).__name__}
            self.log.warning("jupyter-remote: %s %s: %s", self.request.method, self.request.path,
                             body["message"])  # fmt: skip
            self.finish(json.dumps(body))
            return
        super().write_error(status_code, **kwargs)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info and not isinstance(exc_info[1], web.HTTPError):
            status = status_for(exc_info[1])
            if status is not None:
                status_code = status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Our errors are the user's to fix and are answered as such; only bugs get a traceback.
        if value is not None and not isinstance(value, web.HTTPError) and status_for(value):
            return
        super().log_exception(typ, value, tb)
