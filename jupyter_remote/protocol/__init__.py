"""The wire protocol between controller and workers: pure, no sockets, no threads."""

from . import _handshake as handshake
from ._framing import MAX_FRAME_BYTES, FrameDecoder, FrameError, encode_frame
from ._messages import (
    ENTER_MARK,
    EXIT_MARK,
    METHOD_MARK,
    Cancel,
    Event,
    FunctionDef,
    Heartbeat,
    Output,
    Ping,
    Results,
    RunBatch,
    Shutdown,
    TimedOut,
    Yielded,
    new_token,
)
from ._serialization import Failure, Payload, dumps, failure_from_exception, loads, python_version

__all__ = [
    "ENTER_MARK",
    "EXIT_MARK",
    "MAX_FRAME_BYTES",
    "METHOD_MARK",
    "Cancel",
    "Event",
    "Failure",
    "FrameDecoder",
    "FrameError",
    "FunctionDef",
    "Heartbeat",
    "Output",
    "Payload",
    "Ping",
    "Results",
    "RunBatch",
    "Shutdown",
    "TimedOut",
    "Yielded",
    "dumps",
    "encode_frame",
    "failure_from_exception",
    "handshake",
    "loads",
    "new_token",
    "python_version",
]
