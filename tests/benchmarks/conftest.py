"""The benchmarks run on demand (``python tests/benchmarks/run.py``), never under pytest."""

collect_ignore_glob = ["*.py"]
