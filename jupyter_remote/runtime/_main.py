"""Worker entry point: connect, authenticate, serve.

The worker's own credential comes from the environment
(``JUPYTER_REMOTE_TOKEN``, with the controller's TLS pin in
``JUPYTER_REMOTE_TLS_FINGERPRINT``), never from the command line, where ``ps``
would show it; both are removed from the environment before user code runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from ..protocol import handshake, python_version
from ._fetch import EXIT_REJECTED, Link
from ._mounts import MOUNTS_ENV, MountError, active_mounts, apply_mounts, decode_mounts
from ._task import set_task_id
from ._worker import Worker

__all__ = ["main"]

EXIT_MOUNT_FAILED = 4


def _gpus_from_nomad() -> None:
    """raw_exec does not confine GPUs: use the ones Nomad's device plugin assigned us."""
    if (
        os.environ.pop("JUPYTER_REMOTE_GPU_FROM_NVIDIA", "")
        and "NVIDIA_VISIBLE_DEVICES" in os.environ
    ):
        os.environ["CUDA_VISIBLE_DEVICES"] = os.environ["NVIDIA_VISIBLE_DEVICES"]


def _mount_volumes() -> None:
    """Mount the function's volumes first: a private mount namespace needs one thread."""
    spec = os.environ.pop(MOUNTS_ENV, "")
    if not spec:
        return
    try:
        apply_mounts(decode_mounts(spec))
    except MountError as exc:
        print(f"jupyter_remote worker: {exc}", file=sys.stderr)
        sys.exit(EXIT_MOUNT_FAILED)
    for mount in active_mounts():
        print(f"jupyter_remote worker: {mount.describe()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_remote.runtime")
    parser.add_argument("--connect", required=True, help="HOST:PORT of the controller")
    parser.add_argument("--worker-id", default=f"{platform.node()}-{os.getpid()}")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--dead-after", type=float, default=30.0)
    args = parser.parse_args(argv)
    link = Link.from_environ(args.connect, args.worker_id, pop=True)
    set_task_id(args.worker_id)
    _gpus_from_nomad()
    _mount_volumes()
    sock = link.open(args.connect_timeout)
    info = {
        "pid": os.getpid(),
        "python": list(python_version()),
        "host": platform.node(),
    }
    try:
        link.authenticate(sock, info)
    except (OSError, handshake.HandshakeError) as exc:
        print(f"jupyter_remote worker: handshake failed: {exc}", file=sys.stderr)
        sys.exit(EXIT_REJECTED)
    sock.settimeout(None)
    worker = Worker(sock, args.worker_id, dead_after=args.dead_after)
    worker.capture_process_output()
    worker.serve()
