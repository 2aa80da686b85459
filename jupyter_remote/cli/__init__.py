"""The ``jupyter-remote`` command line: ``jupyter-remote run script.py::func --n 3``.

Each subcommand is one private module with ``add_parser(subparsers)``; ``_main``
lists them and turns errors into ``Error: ...`` lines and exit codes.
"""

from ._main import main

__all__ = ["main"]
