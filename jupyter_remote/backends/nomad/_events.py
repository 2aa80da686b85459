"""Parsing of what Nomad streams and reports: pure functions over bytes and dicts.

* :class:`FrameDecoder` splits a stream of concatenated JSON objects (the
  task-log stream: ``{"Data": ..., "Offset": ...}{}{"Data": ...}``) however
  the bytes were chunked on the wire; ``{}`` heartbeats come back as ``{}``.
* :func:`iter_messages` reads those objects (or one per line, for the event
  stream) from a streamed ``httpx.Response`` until it ends, a deadline or a stop.
* :func:`parse_event_batch` turns one ``/v1/event/stream`` line into
  :class:`NomadEvent` objects.
* :class:`LogDecoder` turns log frames into :class:`LogChunk` objects whose
  ``text`` never splits a UTF-8 character across chunks.
* :func:`placement_failures` reads why an evaluation could not place a task
  group; :func:`task_state` reads how a task ended.

Nothing here opens a connection, so the recorded-response tests exercise all
of it; the client translates the errors.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "FrameDecoder",
    "FrameError",
    "LogChunk",
    "LogDecoder",
    "NomadEvent",
    "PlacementFailure",
    "TaskState",
    "iter_messages",
    "parse_event_batch",
    "placement_failures",
    "task_state",
]

# A log frame carries at most 64 KiB of data (~88 KiB as base64); anything far
# larger that still does not parse is not a Nomad frame stream.
_MAX_PENDING = 4 << 20
_PARTIAL_NUMBER = re.compile(r"-?[0-9]*\.?[0-9]*(?:[eE][-+]?[0-9]*)?")


class FrameError(ValueError):
    """The bytes are not a stream of JSON objects."""


class FrameDecoder:
    """Incremental decoder for concatenated JSON objects, chunked at any byte."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return every object that is now complete."""
        try:
            self._buf += self._text.decode(data)
        except UnicodeDecodeError as exc:
            raise FrameError(f"frame stream is not UTF-8: {exc}") from exc
        out: list[dict[str, Any]] = []
        pos = 0
        buf = self._buf
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos == len(buf):
                break
            try:
                obj, end = self._decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if _truncated(buf, exc):
                    break  # wait for more bytes
                raise FrameError(f"malformed JSON in the stream: {exc}") from exc
            if not isinstance(obj, dict):
                raise FrameError(f"expected a JSON object in the stream, got {obj!r:.80}")
            out.append(obj)
            pos = end
        self._buf = buf[pos:]
        if len(self._buf) > _MAX_PENDING:
            raise FrameError(f"no complete JSON object in {len(self._buf)} bytes of stream")
        return out

    def close(self) -> None:
        """The stream ended: anything left over is a truncated object."""
        rest = self._buf + self._text.decode(b"", final=True)
        if rest.strip():
            raise FrameError(f"stream ended inside a JSON object: {rest[:80]!r}")


def _truncated(buf: str, exc: json.JSONDecodeError) -> bool:
    """Whether the decode failed only because the text stops early."""
    if exc.msg.startswith("Unterminated string"):
        return True
    rest = buf[exc.pos :]
    if not rest or _PARTIAL_NUMBER.fullmatch(rest):
        return True
    return any(word.startswith(rest) for word in ("true", "false", "null"))


def iter_messages(
    resp: httpx.Response,
    *,
    by_line: bool,
    deadline: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed response, heartbeats (``{}``) included.

    ``by_line``: one object per line (the event stream); otherwise concatenated
    objects split at any byte (log frames). Ends when the response ends, when
    ``stop`` is set, or at the first read after ``deadline`` (``time.monotonic``),
    a read timeout past the deadline included.
    """
    decoder = FrameDecoder()
    batches: Iterator[list[dict[str, Any]]]
    if by_line:
        batches = (_line_message(line) for line in resp.iter_lines())
    else:
        batches = (decoder.feed(data) for data in resp.iter_bytes())

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    while not stopped():
        try:
            messages = next(batches)
        except StopIteration:
            if not by_line:
                decoder.close()
            return
        except httpx.ReadTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                return
            raise
        for message in messages:
            yield message
            if stopped():
                return
        if deadline is not None and time.monotonic() >= deadline:
            return


def _line_message(line: str) -> list[dict[str, Any]]:
    if not line.strip():
        return []
    message = json.loads(line)
    if not isinstance(message, dict):
        raise FrameError(f"expected a JSON object per line, got {line[:80]!r}")
    return [message]


@dataclass(frozen=True)
class NomadEvent:
    """One event of ``/v1/event/stream`` (``topic`` Job/Allocation/Evaluation/Node/...)."""

    topic: str
    type: str  # JobRegistered, AllocationUpdated, PlanResult, EvaluationUpdated, ...
    key: str  # the object's ID (job ID, alloc ID, eval ID)
    namespace: str
    index: int
    payload: dict[str, Any] = field(repr=False)
    filter_keys: tuple[str, ...] = ()

    @property
    def object(self) -> dict[str, Any]:
        """The payload's object (``payload["Allocation"]`` for the Allocation topic...)."""
        value = self.payload.get(self.topic)
        return value if isinstance(value, dict) else {}


def parse_event_batch(batch: Mapping[str, Any]) -> list[NomadEvent]:
    """The events of one stream message; a ``{}`` heartbeat has none."""
    events: list[NomadEvent] = []
    for raw in batch.get("Events") or ():
        events.append(
            NomadEvent(
                topic=str(raw.get("Topic", "")),
                type=str(raw.get("Type", "")),
                key=str(raw.get("Key", "")),
                namespace=str(raw.get("Namespace", "")),
                index=int(raw.get("Index", batch.get("Index", 0))),
                payload=dict(raw.get("Payload") or {}),
                filter_keys=tuple(raw.get("FilterKeys") or ()),
            )
        )
    return events


@dataclass(frozen=True)
class LogChunk:
    """A piece of a task's stdout or stderr.

    ``data`` is the frame's raw bytes; ``text`` is decoded UTF-8 that holds back
    a character split across frames until its last byte arrives (invalid bytes
    become U+FFFD). ``offset`` is the file offset after this chunk: pass it back
    as ``offset`` with ``origin="start"`` to resume.
    """

    data: bytes
    text: str
    file: str
    offset: int
    file_event: str = ""  # "file truncated" / "file deleted" on log rotation


class LogDecoder:
    """Turns log frames into :class:`LogChunk` objects, one UTF-8 decoder per stream."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def chunk(self, frame: Mapping[str, Any]) -> LogChunk | None:
        """The chunk a frame carries, or None for a heartbeat or an empty frame."""
        encoded = frame.get("Data") or ""
        file_event = str(frame.get("FileEvent") or "")
        if not encoded and not file_event:
            return None
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FrameError(f"log frame Data is not base64: {exc}") from exc
        return LogChunk(
            data=data,
            text=self._utf8.decode(data),
            file=str(frame.get("File") or ""),
            offset=int(frame.get("Offset") or 0),
            file_event=file_event,
        )

    def flush(self) -> str:
        """Text held back at the end of the stream (a truncated character as U+FFFD)."""
        return self._utf8.decode(b"", final=True)


@dataclass(frozen=True)
class PlacementFailure:
    """Why an evaluation could not place a task group (from ``FailedTGAllocs``).

    ``filtered`` counts nodes ruled out for good (``{"missing devices": 1}``,
    ``{"missing drivers": 2}``, constraint texts); ``exhausted`` counts nodes
    that lacked free capacity (``{"memory": 1}``, ``{"devices: no devices match
    request": 1}``). ``nodes_in_pool`` is 0 when no node is in the node pool.
    """

    group: str
    nodes_evaluated: int
    nodes_in_pool: int
    nodes_available: dict[str, int]
    filtered: dict[str, int]
    exhausted: dict[str, int]
    quota_exhausted: tuple[str, ...] = ()

    @property
    def waiting_on_capacity(self) -> bool:
        """True when some node passed every constraint but was full."""
        return bool(self.exhausted) or bool(self.quota_exhausted)

    def describe(self) -> str:
        """One line: 'group "g": 1 node evaluated: missing devices (1)'."""
        if self.nodes_evaluated == 0:
            dcs = ", ".join(f"{dc}: {n}" for dc, n in sorted(self.nodes_available.items()))
            return (
                f"group {self.group!r}: no node to evaluate "
                f"({self.nodes_in_pool} in the node pool; nodes available per datacenter: "
                f"{dcs or 'none'})"
            )
        reasons = [f"{why} ({n})" for why, n in sorted(self.filtered.items())]
        reasons += [f"no free {what} ({n})" for what, n in sorted(self.exhausted.items())]
        reasons += [f"quota {q} exhausted" for q in self.quota_exhausted]
        plural = "s" if self.nodes_evaluated != 1 else ""
        return f"group {self.group!r}: {self.nodes_evaluated} node{plural} evaluated: " + (
            "; ".join(reasons) or "no reason given"
        )


def placement_failures(evaluation: Mapping[str, Any]) -> list[PlacementFailure]:
    """The failed placements an evaluation reports, one per task group."""
    out = []
    for group, metric in sorted((evaluation.get("FailedTGAllocs") or {}).items()):
        filtered = dict(metric.get("ConstraintFiltered") or {})
        for cls, n in (metric.get("ClassFiltered") or {}).items():
            filtered.setdefault(f"node class {cls}", n)
        out.append(
            PlacementFailure(
                group=group,
                nodes_evaluated=int(metric.get("NodesEvaluated") or 0),
                nodes_in_pool=int(metric.get("NodesInPool") or 0),
                nodes_available=dict(metric.get("NodesAvailable") or {}),
                filtered=filtered,
                exhausted=dict(metric.get("DimensionExhausted") or {}),
                quota_exhausted=tuple(metric.get("QuotaExhausted") or ()),
            )
        )
    return out


@dataclass(frozen=True)
class TaskState:
    """How a task of an allocation stands or ended (from ``TaskStates``)."""

    task: str
    state: str  # pending | running | dead
    failed: bool
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    message: str = ""  # the last event's message: "Exit Code: 3", a driver error...

    @property
    def finished(self) -> bool:
        return self.state == "dead"

    def describe(self) -> str:
        """'exited with status 3', 'killed by signal 9 (SIGKILL)', 'killed: out of memory'."""
        if self.oom_killed:
            return "killed: out of memory (the task exceeded its memory limit)"
        if self.signal:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by signal {self.signal} ({name})"
        if self.exit_code is not None:
            return f"exited with status {self.exit_code}"
        return self.message or self.state


_FAILURE_EVENTS = (
    "Driver Failure",
    "Failed Validation",
    "Setup Failure",
    "Failed Artifact Download",
    "Task hook failed",
    "Killed",
    "Terminated",
)


def task_state(allocation: Mapping[str, Any], task: str) -> TaskState | None:
    """The state of ``task`` in an allocation, or None before the client reported it."""
    raw = (allocation.get("TaskStates") or {}).get(task)
    if not raw:
        return None
    exit_code: int | None = None
    sig: int | None = None
    oom = False
    message = ""
    for event in raw.get("Events") or ():
        kind = event.get("Type", "")
        details = event.get("Details") or {}
        if kind == "Terminated":
            exit_code = int(event.get("ExitCode") or details.get("exit_code") or 0)
            sig = int(event.get("Signal") or details.get("signal") or 0) or None
            oom = str(details.get("oom_killed", "")).lower() == "true"
        if kind in _FAILURE_EVENTS:
            message = str(event.get("DisplayMessage") or event.get("Message") or kind)
    return TaskState(
        task=task,
        state=str(raw.get("State", "")),
        failed=bool(raw.get("Failed")),
        exit_code=exit_code,
        signal=sig,
        oom_killed=oom,
        message=message,
    )
