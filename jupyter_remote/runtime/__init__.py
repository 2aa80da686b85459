"""The worker side: ``python -m jupyter_remote.runtime --connect HOST:PORT``.

It imports the protocol and nothing of the API, IPython or Jupyter.
"""

from ._worker import emit

__all__ = ["emit"]
