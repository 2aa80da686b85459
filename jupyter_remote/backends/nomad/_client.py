"""The Nomad HTTP API, as the Nomad backend needs it.

python-nomad serves the request/response endpoints; one ``httpx.Client``
serves what python-nomad cannot do well: the event stream, task-log streams
(concatenated JSON frames with ``{}`` heartbeats), blocking queries and
scaling. Both are built from one :class:`NomadConfig` (address, token,
namespace, region, TLS always verified).

Errors from either library are translated in :meth:`NomadClient._translate`,
and only there::

    BackendError
    └── NomadError                 .status (HTTP status or None), .server_message
        ├── NomadUnavailableError  cannot talk to Nomad: refused, DNS, TLS, timeout
        ├── NomadPermissionError   403: token missing, unknown or not allowed
        └── NomadNotFoundError     404: no such job, allocation, variable, or no logs yet

Example::

    >>> with NomadClient(NomadConfig.load()) as nomad:
    ...     nomad.version()
    '1.6.5'
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn
from urllib.parse import quote

import httpx
import nomad
import nomad.api.base
import nomad.api.exceptions
import requests

from ...exceptions import BackendError
from ._config import NomadConfig, tls_settings
from ._events import (
    FrameError,
    LogChunk,
    LogDecoder,
    NomadEvent,
    iter_messages,
    parse_event_batch,
    task_state,
)

__all__ = [
    "NomadClient",
    "NomadError",
    "NomadNotFoundError",
    "NomadPermissionError",
    "NomadUnavailableError",
    "QueryResult",
]

LogType = Literal["stdout", "stderr"]
_USER_AGENT = "jupyter_remote (python-nomad, httpx)"
_CONNECT_TIMEOUT = 5.0
_EVENT_SILENCE = 35.0  # Nomad sends an event-stream heartbeat every 10 s
_LOG_SILENCE = 15.0  # ... and a log-stream heartbeat every second
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")


class NomadError(BackendError):
    """Nomad refused or failed a request; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, server_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status, self.server_message))


class NomadUnavailableError(NomadError):
    """Nomad could not be reached: connection refused, name not found, TLS failure, timeout."""


class NomadPermissionError(NomadError):
    """Nomad answered 403: the token is missing, unknown, or its ACL policy forbids the call."""


class NomadNotFoundError(NomadError):
    """Nomad answered 404: no such job, allocation or variable, or a task has no logs yet."""


@dataclass(frozen=True)
class QueryResult:
    """The answer to a blocking query and the index to pass to the next one."""

    value: Any
    index: int


class NomadClient:
    """A connection to one Nomad cluster, in one namespace.

    ``transport`` replaces httpx's transport and ``session`` python-nomad's
    requests session (the recorded-response tests pass both).
    """

    def __init__(
        self,
        config: NomadConfig | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config = config if config is not None else NomadConfig.load()
        self._timeout = timeout
        verify, ssl_context, cert = tls_settings(config)
        self._session = session if session is not None else requests.Session()
        self._session.headers["User-Agent"] = _USER_AGENT
        self._api = nomad.Nomad(
            address=config.address,
            namespace=config.namespace,
            token=config.token,
            region=config.region,
            timeout=(_CONNECT_TIMEOUT, timeout),
            verify=verify,
            cert=cert,
            session=self._session,
        )
        # python-nomad falls back to NOMAD_* variables for anything unset; the
        # config is the one source of truth, so overwrite what it picked up.
        for requester in _requesters(self._api):
            requester.token = config.token
            requester.region = config.region
            requester.cert = cert
            requester.verify = verify
        headers = {"User-Agent": _USER_AGENT}
        if config.token:
            headers["X-Nomad-Token"] = config.token
        self._http = httpx.Client(
            base_url=config.address,
            headers=headers,
            verify=ssl_context if ssl_context is not None else True,
            timeout=httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"NomadClient(address={self.config.address!r}, namespace={self.config.namespace!r})"

    def close(self) -> None:
        self._http.close()
        self._session.close()

    def __enter__(self) -> NomadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- agent and nodes ----------------------------------------------------

    def agent_self(self) -> dict[str, Any]:
        """``/v1/agent/self``: the agent's config, member and stats."""
        return _dict(self._call("read the agent's status", self._api.agent.get_agent))

    def version(self) -> str:
        """The version of the agent at ``address`` ("1.6.5")."""
        return str(self.agent_self().get("config", {}).get("Version", {}).get("Version", ""))

    def nodes(self, *, resources: bool = False) -> list[dict[str, Any]]:
        """Node stubs; with ``resources`` each has ``NodeResources`` (devices included)."""
        return _list(
            self._call("list nodes", self._api.nodes.get_nodes, resources=resources or None)
        )

    def nodes_with_resources(self) -> list[dict[str, Any]]:
        """Nodes with ``NodeResources.Devices[]`` (``Vendor``, ``Type``, ``Name``,
        ``Instances``, ``Attributes``); ``Devices`` is null on a node without devices."""
        return self.nodes(resources=True)

    def node(self, node_id: str) -> dict[str, Any]:
        return _dict(self._call(f"read node {node_id}", self._api.node.get_node, node_id))

    # -- jobs ---------------------------------------------------------------

    def register_job(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Register (create or update) ``job``, the JSON form of a job spec (no ``Job`` wrapper).

        Returns the registration (``EvalID``, ``JobModifyIndex``, ``Warnings``).
        """
        body = {"Namespace": self.config.namespace, **job}
        what = f"register job {job.get('ID')!r}"
        return _dict(self._call(what, self._api.jobs.register_job, {"Job": body}))

    def job(self, job_id: str) -> dict[str, Any]:
        return _dict(self._call(f"read job {job_id!r}", self._api.job.get_job, job_id))

    def list_jobs(self, prefix: str = "") -> list[dict[str, Any]]:
        """Job stubs whose ID starts with ``prefix``."""
        what = f"list jobs with prefix {prefix!r}"
        return _list(self._call(what, self._api.jobs.get_jobs, prefix=prefix or None))

    def job_summary(self, job_id: str) -> dict[str, Any]:
        """Per-group counts: ``Summary[group]`` has ``Queued``, ``Running``, ``Failed``..."""
        what = f"read the summary of job {job_id!r}"
        return _dict(self._call(what, self._api.job.get_summary, job_id))

    def job_allocations(self, job_id: str, *, all_versions: bool = False) -> list[dict[str, Any]]:
        what = f"list the allocations of job {job_id!r}"
        fn = self._api.job.get_allocations
        return _list(self._call(what, fn, job_id, all_=all_versions or None))

    def job_evaluations(self, job_id: str) -> list[dict[str, Any]]:
        what = f"list the evaluations of job {job_id!r}"
        return _list(self._call(what, self._api.job.get_evaluations, job_id))

    def scale_job(self, job_id: str, group: str, count: int, message: str = "") -> dict[str, Any]:
        """Set the count of ``group``; returns the registration (``EvalID``...)."""
        body: dict[str, Any] = {"Count": count, "Target": {"Group": group}}
        if message:
            body["Message"] = message
        what = f"scale group {group!r} of job {job_id!r} to {count}"
        resp = self._request("POST", f"/v1/job/{_q(job_id)}/scale", what, json=body)
        return _dict(self._json(resp, what))

    def dispatch_job(self, job_id: str, meta: Mapping[str, str]) -> dict[str, Any]:
        """Dispatch the parameterized job ``job_id``; returns ``DispatchedJobID``, ``EvalID``."""
        what = f"dispatch job {job_id!r}"
        body = {"Meta": dict(meta)}
        resp = self._request("POST", f"/v1/job/{_q(job_id)}/dispatch", what, json=body)
        return _dict(self._json(resp, what))

    def stop_job(self, job_id: str, *, purge: bool = False) -> dict[str, Any]:
        """Stop every allocation of the job; ``purge`` also removes the job from Nomad."""
        what = f"stop job {job_id!r}"
        fn = self._api.job.deregister_job
        return _dict(self._call(what, fn, job_id, purge=purge or None))

    # -- evaluations and allocations -----------------------------------------

    def evaluation(self, eval_id: str) -> dict[str, Any]:
        """An evaluation; ``FailedTGAllocs`` says why groups could not be placed."""
        what = f"read evaluation {eval_id}"
        return _dict(self._call(what, self._api.evaluation.get_evaluation, eval_id))

    def allocation(self, alloc_id: str) -> dict[str, Any]:
        """An allocation with its ``TaskStates`` (events, exit codes)."""
        what = f"read allocation {alloc_id}"
        return _dict(self._call(what, self._api.allocation.get_allocation, alloc_id))

    def stop_allocation(self, alloc_id: str) -> dict[str, Any]:
        what = f"stop allocation {alloc_id}"
        return _dict(self._call(what, self._api.allocation.stop_allocation, alloc_id))

    def signal_allocation(
        self, alloc_id: str, signal: str = "SIGKILL", task: str | None = None
    ) -> None:
        """Send ``signal`` to ``task`` (every task when None) of a running allocation."""
        what = f"send {signal} to allocation {alloc_id}"
        fn = self._api.client.allocation.signal_allocation
        self._call(what, fn, alloc_id, signal, task)

    # -- blocking queries ----------------------------------------------------

    def blocking_get(
        self,
        path: str,
        *,
        index: int = 0,
        wait: float = 30.0,
        params: Mapping[str, str] | None = None,
    ) -> QueryResult:
        """GET ``path`` (``/v1/job/<id>/allocations``...) once its index passes ``index``.

        Returns after at most ``wait`` seconds (plus Nomad's jitter of up to
        wait/16) with the current value and ``X-Nomad-Index``.
        """
        query = {"index": str(index), "wait": f"{max(round(wait), 1)}s", **(params or {})}
        timeout = httpx.Timeout(wait * 17 / 16 + self._timeout, connect=_CONNECT_TIMEOUT)
        what = f"watch {path}"
        resp = self._request("GET", path, what, params=query, timeout=timeout)
        try:
            new_index = int(resp.headers.get("X-Nomad-Index", "0"))
        except ValueError:
            new_index = 0
        return QueryResult(self._json(resp, what), new_index)

    # -- streams -------------------------------------------------------------

    def events(
        self,
        topics: Sequence[str] = ("Job", "Allocation", "Evaluation"),
        *,
        index: int = 0,
        namespace: str | None = None,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[NomadEvent]:
        """Follow ``/v1/event/stream``; heartbeats are skipped.

        ``topics`` are ``"Topic"`` or ``"Topic:key"`` (``"Allocation:<alloc id>"``,
        ``"Job:<job id>"``). Events come from ``index`` on (resume with the
        last seen ``event.index + 1``). Ends when Nomad closes the stream, after
        ``timeout`` seconds (within one 10 s heartbeat), or once ``stop`` is set
        (checked at every message). The stream opens at the first ``next()``.
        """
        params = {"topic": list(topics), "index": str(index)}
        params["namespace"] = namespace or self.config.namespace
        what = "follow the event stream"
        path = "/v1/event/stream"
        messages = self._stream(path, what, params, _EVENT_SILENCE, timeout, stop, by_line=True)
        with contextlib.closing(messages):
            for batch in messages:
                yield from parse_event_batch(batch)

    def follow_logs(
        self,
        alloc_id: str,
        task: str,
        log_type: LogType = "stderr",
        *,
        origin: Literal["start", "end"] = "start",
        offset: int = 0,
        follow: bool = True,
        until_finished: bool = True,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[LogChunk]:
        """Follow a task's stdout or stderr from ``offset`` bytes after ``origin``.

        Nomad never closes a followed log stream, even after the task died; with
        ``until_finished`` this checks the allocation every two seconds and ends
        once the task is dead and its last output was delivered. ``timeout`` and
        ``stop`` end it earlier. Raises :class:`NomadNotFoundError` while the task
        has not started.
        """
        params = {"task": task, "type": log_type, "origin": origin, "offset": str(offset)}
        params["follow"] = "true" if follow else "false"
        path = f"/v1/client/fs/logs/{_q(alloc_id)}"
        what = f"follow the {log_type} of task {task!r} in allocation {alloc_id}"
        decoder = LogDecoder()
        last_offset = offset
        dead_since: float | None = None
        next_check = time.monotonic() + 2.0
        frames = self._stream(path, what, params, _LOG_SILENCE, timeout, stop)
        with contextlib.closing(frames):
            for frame in frames:
                with self._errors(what):
                    chunk = decoder.chunk(frame)
                if chunk is not None:
                    last_offset = chunk.offset
                    yield chunk
                    continue
                now = time.monotonic()
                if dead_since is not None and now - dead_since >= 1.0:
                    break  # a heartbeat a second after death: the output has all arrived
                if until_finished and follow and dead_since is None and now >= next_check:
                    if self._task_finished(alloc_id, task):
                        dead_since = now
                    next_check = now + 2.0
        rest = decoder.flush()  # a character cut off by the end of the stream
        if rest:
            yield LogChunk(data=b"", text=rest, file="", offset=last_offset)

    def _task_finished(self, alloc_id: str, task: str) -> bool:
        try:
            state = task_state(self.allocation(alloc_id), task)
        except NomadNotFoundError:
            return True  # garbage-collected: nothing more will be written
        return state is not None and state.finished

    def log_tail(
        self, alloc_id: str, task: str, log_type: LogType = "stderr", *, max_bytes: int = 8192
    ) -> str:
        """The last ``max_bytes`` of a task's log as text; "" when it has none (yet)."""
        params = {"task": task, "type": log_type, "origin": "end", "offset": str(max_bytes)}
        params["plain"] = "true"
        what = f"read the {log_type} of task {task!r} in allocation {alloc_id}"
        try:
            resp = self._request("GET", f"/v1/client/fs/logs/{_q(alloc_id)}", what, params=params)
        except NomadNotFoundError:
            return ""
        data = resp.content
        if len(data) >= max_bytes:  # we may have cut into a character: drop its tail bytes
            while data and (data[0] & 0xC0) == 0x80:
                data = data[1:]
        return data.decode("utf-8", errors="replace")

    # -- variables -----------------------------------------------------------

    def put_variable(
        self, path: str, items: Mapping[str, str], *, cas: int | None = None
    ) -> dict[str, Any]:
        """Create or replace the variable at ``path`` (``cas``: only if ModifyIndex matches)."""
        body = {"Namespace": self.config.namespace, "Path": path, "Items": dict(items)}
        fn = self._api.variable.create_variable
        result = self._call(
            f"write variable {path!r}", fn, path, body, namespace=self.config.namespace, cas=cas
        )
        return _dict(result)

    def get_variable(self, path: str) -> dict[str, Any] | None:
        """The variable at ``path`` (``Items`` holds the values), or None if there is none."""
        fn = self._api.variable.get_variable
        try:
            result = self._call(f"read variable {path!r}", fn, path, self.config.namespace)
        except NomadNotFoundError:
            return None
        return _dict(result)

    def delete_variable(self, path: str) -> None:
        fn = self._api.variable.delete_variable
        self._call(f"delete variable {path!r}", fn, path, namespace=self.config.namespace)

    def list_variables(self, prefix: str = "") -> list[dict[str, Any]]:
        """Variable metadata (``Path``, ``ModifyIndex``...; no values) under ``prefix``."""
        fn = self._api.variables.get_variables
        what = f"list variables with prefix {prefix!r}"
        return _list(self._call(what, fn, prefix, self.config.namespace))

    # -- plumbing ------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._errors(what):
            return fn(*args, **kwargs)

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Query parameters with the namespace and region every httpx request carries."""
        query = {"namespace": self.config.namespace, **(params or {})}
        if self.config.region:
            query["region"] = self.config.region
        return query

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        limits = timeout or httpx.USE_CLIENT_DEFAULT
        with self._errors(what):
            resp = self._http.request(
                method, path, params=self._params(params), json=json, timeout=limits
            )
            resp.raise_for_status()
            return resp

    def _json(self, resp: httpx.Response, what: str) -> Any:
        with self._errors(what):
            return resp.json()

    def _stream(
        self,
        path: str,
        what: str,
        params: Mapping[str, Any],
        silence: float,
        timeout: float | None,
        stop: threading.Event | None,
        *,
        by_line: bool = False,
    ) -> Generator[dict[str, Any], None, None]:
        """Yield the JSON objects of a streamed response, heartbeats (``{}``) included."""
        deadline = None if timeout is None else time.monotonic() + timeout
        read = silence if timeout is None else min(silence, max(timeout, 0.1))
        limits = httpx.Timeout(self._timeout, connect=_CONNECT_TIMEOUT, read=read)
        with self._errors(what):
            # identity: a gzip layer could hold frames back until its buffer fills
            headers = {"Accept-Encoding": "identity"}
            request = self._http.build_request(
                "GET", path, params=self._params(params), headers=headers, timeout=limits
            )
            try:
                resp = self._http.send(request, stream=True)
            except httpx.ReadTimeout:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                raise
            try:
                if resp.is_error:
                    resp.read()
                    resp.raise_for_status()
                yield from iter_messages(resp, by_line=by_line, deadline=deadline, stop=stop)
            finally:
                resp.close()

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except NomadError:
            raise
        except (
            nomad.api.exceptions.BaseNomadException,
            requests.RequestException,
            httpx.HTTPError,
            httpx.StreamError,
            FrameError,
            ValueError,  # JSON that does not parse, from either library
        ) as exc:
            self._translate(exc, what)

    def _translate(self, exc: BaseException, what: str) -> NoReturn:
        """The one place where library errors become :class:`NomadError` subclasses."""
        address = self.config.address
        response = getattr(exc, "nomad_resp", None)
        if response is None:
            response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            server = self._scrub(_body_text(response))
            if status == 403:
                raise NomadPermissionError(
                    f"Nomad refused to {what}: {server} (HTTP 403). {self._token_hint(server)}",
                    status,
                    server,
                ) from exc
            cls = NomadNotFoundError if status == 404 else NomadError
            raise cls(f"Nomad could not {what}: {server} (HTTP {status})", status, server) from exc
        cause = response if isinstance(response, BaseException) else exc
        reason = self._scrub(_reason(cause))
        if isinstance(exc, FrameError | ValueError):
            raise NomadError(
                f"Nomad at {address} sent a malformed answer when asked to {what}: {reason}. "
                "Is NOMAD_ADDR the HTTP API of a Nomad agent?"
            ) from exc
        text = f"{type(cause).__name__}: {cause}"
        if "SSL" in text or "CERTIFICATE" in text:
            raise NomadUnavailableError(
                f"TLS with Nomad at {address} failed while trying to {what}: {reason}. TLS is "
                "always verified: set NOMAD_CACERT to the CA certificate that signed the "
                "server's, and NOMAD_CLIENT_CERT/NOMAD_CLIENT_KEY if the cluster requires "
                "client certificates."
            ) from exc
        if isinstance(cause, httpx.TimeoutException | requests.Timeout):
            raise NomadUnavailableError(
                f"Nomad at {address} did not answer in time to {what} ({reason}). Check that "
                "NOMAD_ADDR is right and the cluster is healthy (nomad server members)."
            ) from exc
        if isinstance(cause, httpx.ConnectError | requests.ConnectionError):
            raise NomadUnavailableError(
                f"cannot reach Nomad at {address} to {what} ({reason}). Check that a Nomad "
                "agent is running there and that NOMAD_ADDR (or address in the [nomad] table "
                "of the config file) points at its HTTP API, e.g. http://127.0.0.1:4646."
            ) from exc
        raise NomadUnavailableError(
            f"the connection to Nomad at {address} failed while trying to {what}: {reason}"
        ) from exc

    def _token_hint(self, server: str) -> str:
        ns = self.config.namespace
        if not self.config.token:
            return (
                "This cluster enforces ACLs and NOMAD_TOKEN is not set: set it to an ACL "
                "token's secret ID (nomad acl token create)."
            )
        # Nomad 1.6 says "Permission denied" for unknown tokens too.
        return (
            "Either the token in NOMAD_TOKEN is unknown to this cluster (expired, deleted, "
            "or from another cluster) or its ACL policy does not allow this in namespace "
            f'{ns!r}: it needs e.g. namespace "{ns}" {{ policy = "write" }}, node read for '
            "GPU discovery and variables for secrets (nomad acl token self shows the token)."
        )

    def _scrub(self, text: str) -> str:
        token = self.config.token
        return text.replace(token, "***") if token else text


def _requesters(api: Any) -> Iterator[Any]:
    """Every python-nomad endpoint object (each holds its own copy of the settings)."""
    for value in vars(api).values():
        if isinstance(value, nomad.api.base.Requester):
            yield value
        elif isinstance(value, nomad.api.Client | nomad.api.Event):
            for inner in vars(value).values():
                if isinstance(inner, nomad.api.base.Requester):
                    yield inner


def _body_text(response: Any) -> str:
    try:
        text = str(response.text)
    except (httpx.ResponseNotRead, httpx.StreamError, UnicodeDecodeError):
        return "(no message)"
    return text.strip()[:2000] or "(no message)"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    return text[:300] or type(exc).__name__


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NomadError(f"expected a JSON object from Nomad, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise NomadError(f"expected a JSON list from Nomad, got {type(value).__name__}")
    return value
