"""The worker side: ``python -m jupyter_remote.runtime --connect HOST:PORT``.

It imports the protocol and nothing of the API, IPython or Jupyter.
"""

from ._context import current_function_call_id, current_input_id
from ._worker import emit

__all__ = ["current_function_call_id", "current_input_id", "emit"]
