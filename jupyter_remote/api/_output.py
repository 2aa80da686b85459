"""``enable_output()``: Modal's switch for showing what workers do, in a script."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ._progress import override_progress

__all__ = ["enable_output"]


@contextlib.contextmanager
def enable_output(show_progress: bool = True) -> Iterator[None]:
    """Show workers' output and ``.map`` progress inside the block.

    Workers' stdout/stderr and image build output always stream to the caller
    here (Modal shows them only inside this block); what the block changes is
    progress: with ``show_progress=True`` every ``.map`` in it shows its
    progress bar (or summary line) even when the ``progress`` setting is off,
    with ``show_progress=False`` none does.

    >>> import jupyter_remote as jr
    >>> with jr.enable_output():
    ...     pass
    """
    if not isinstance(show_progress, bool):
        raise TypeError(f"show_progress must be True or False, not {type(show_progress).__name__}")
    with override_progress(show_progress):
        yield
