"""The controller: input queues, dispatch, results, retries, autoscaling, output routing."""

from ._calls import END, ERR, OK, YIELD, CallState, EventItem, Outcome, OutputLine, ResultChannel
from ._controller import Controller, controller
from ._loop import LoopThread, loop_thread
from ._pool import Pool, Scaling

__all__ = [
    "END",
    "ERR",
    "OK",
    "YIELD",
    "CallState",
    "Controller",
    "EventItem",
    "LoopThread",
    "Outcome",
    "OutputLine",
    "Pool",
    "ResultChannel",
    "Scaling",
    "controller",
    "loop_thread",
]
