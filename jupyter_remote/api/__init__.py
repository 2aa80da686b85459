"""The user API: App, Function, Cls, FunctionCall, the decorators, ``parameter``."""

from ._app import App, LocalEntrypoint
from ._call import FunctionCall
from ._cls import Cls, ClsInstance, enter, exit, method
from ._concurrent import concurrent
from ._function import Function
from ._image import Image
from ._parameter import parameter
from ._schedule import Cron, Period
from ._secret import Secret
from ._volume import Volume

__all__ = [
    "App",
    "Cls",
    "ClsInstance",
    "Cron",
    "Function",
    "FunctionCall",
    "Image",
    "LocalEntrypoint",
    "Period",
    "Secret",
    "Volume",
    "concurrent",
    "enter",
    "exit",
    "method",
    "parameter",
]
