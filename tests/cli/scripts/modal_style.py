"""A Modal script with only its import changed: the everyday names of Modal's examples."""

from __future__ import annotations

import os

import jupyter_remote as modal
from jupyter_remote.exception import FunctionTimeoutError, NotFoundError

image = modal.Image.debian_slim()
with image.imports():
    import a_package_only_the_image_has  # type: ignore[import-not-found]  # noqa: F401

app = modal.App("modal-style", image=image)


@app.function(gpu=None, timeout=60, retries=modal.Retries(max_retries=0))
def square(x: int) -> int:
    return x * x


@app.function()
def where() -> str:
    return f"local={modal.is_local()} task={os.environ['MODAL_TASK_ID'] != ''}"


@app.local_entrypoint()
def main(n: int = 4) -> None:
    assert app.image is image
    try:
        modal.Volume.from_name("no-such-volume-modal-style")
    except NotFoundError:
        print("missing volume: NotFoundError")
    with modal.enable_output():
        print("squares", sum(square.map(range(n))))
    print(where.remote(), "caller local:", modal.is_local())
    assert issubclass(FunctionTimeoutError, TimeoutError)
