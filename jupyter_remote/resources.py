"""Resource requests: GPU models, GPU specs, memory and CPU values.

Pure and stdlib-only, so the API, the backends and the Nomad job builder all
read one table and one grammar::

    >>> req = parse_gpu(["A100-80GB:2", "h100:2"])
    >>> str(req), req.count
    ('A100-80GB:2, H100:2', 2)
    >>> parse_memory("16Gi"), parse_cpu("500m")
    (16384, 0.5)

The GPU table is data (``GPU_MODELS``); operators extend it with a JSON file
named by ``JUPYTER_REMOTE_GPU_TABLE`` (format in :func:`load_gpu_table`).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from jupyter_remote.exceptions import ConfigError

__all__ = [
    "GPU_MODELS",
    "GPU_TABLE_ENV",
    "MAX_GPU_COUNT",
    "GpuChoice",
    "GpuModel",
    "GpuRequest",
    "find_gpu_model",
    "gpu_table",
    "load_gpu_table",
    "model_for_device",
    "parse_cpu",
    "parse_gpu",
    "parse_memory",
]

GPU_TABLE_ENV = "JUPYTER_REMOTE_GPU_TABLE"
MAX_GPU_COUNT = 16
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class GpuModel:
    """One row of the GPU table.

    ``model_regex`` is matched against NVIDIA's device model string (what
    ``nvidia-smi`` prints and Nomad exposes as ``${device.model}``). It must be
    anchored (``^...$``) and use only syntax that Python ``re`` and Go's RE2
    share, because the Nomad backend sends it as a ``regexp`` constraint.

    >>> GpuModel("T4", (), 16, r"^(Tesla|NVIDIA) T4$").matches("Tesla T4")
    True
    """

    name: str
    aliases: tuple[str, ...]
    memory_gb: int
    model_regex: str

    def __post_init__(self) -> None:
        for label in (self.name, *self.aliases):
            if not isinstance(label, str) or not _NAME_RE.fullmatch(label):
                raise ConfigError(
                    f"Bad GPU model name {label!r}: use letters, digits, '.', '_' or '-' "
                    "(no ':' or ',', which separate counts and choices)."
                )
            if label.lower() == "any":
                raise ConfigError("'any' is reserved for 'any GPU model'; pick another name.")
        memory = self.memory_gb
        if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
            raise ConfigError(f"GPU {self.name}: memory_gb must be a positive int, got {memory!r}.")
        regex = self.model_regex
        if not isinstance(regex, str) or not (regex.startswith("^") and regex.endswith("$")):
            raise ConfigError(
                f"GPU {self.name}: model_regex {regex!r} must be a string anchored "
                "with ^ and $ so it cannot match a longer model name by accident."
            )
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"GPU {self.name}: bad model_regex {regex!r}: {exc}") from exc

    @property
    def min_memory_mib(self) -> int:
        """Smallest device memory (MiB) accepted: 90 % of ``memory_gb`` GiB.

        Drivers reserve some memory, so an 80 GB H100 reports 81559 MiB.
        """
        return self.memory_gb * 1024 * 9 // 10

    def matches(self, device_model: str) -> bool:
        """Whether NVIDIA's device model string (e.g. ``"NVIDIA H100 80GB HBM3"``) is this GPU."""
        return re.match(self.model_regex, device_model.strip()) is not None


#: The built-in table, smallest to largest. "A10" also matches AWS's A10G
#: (same GA102 chip and memory); "A100" matches either memory size.
GPU_MODELS: tuple[GpuModel, ...] = (
    GpuModel("T4", ("TESLA-T4",), 16, r"^(Tesla|NVIDIA) T4$"),
    GpuModel("L4", (), 24, r"^NVIDIA L4$"),
    GpuModel("A10", (), 24, r"^NVIDIA A10G?$"),
    GpuModel("A10G", (), 24, r"^NVIDIA A10G$"),
    GpuModel("L40S", (), 48, r"^NVIDIA L40S$"),
    GpuModel("A100", (), 40, r"^NVIDIA A100([- ].*)?$"),
    GpuModel("A100-40GB", ("A100-40G",), 40, r"^NVIDIA A100[- ].*40GB.*$"),
    GpuModel("A100-80GB", ("A100-80G",), 80, r"^NVIDIA A100[- ].*80GB.*$"),
    GpuModel("H100", ("H100-80GB", "H100-80G"), 80, r"^NVIDIA H100( .*)?$"),
    GpuModel("H200", ("H200-141GB",), 141, r"^NVIDIA H200( .*)?$"),
    GpuModel("B200", (), 180, r"^NVIDIA B200( .*)?$"),
)

_FIELDS = {"name", "aliases", "memory_gb", "model_regex"}


def _model_from_json(obj: Any, where: str) -> GpuModel:
    if not isinstance(obj, dict) or not {"name", "memory_gb", "model_regex"} <= obj.keys():
        raise ConfigError(
            f"{where}: each entry must be an object with name, memory_gb, model_regex "
            f"and optional aliases; got {obj!r}."
        )
    unknown = obj.keys() - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)} in {obj!r}.")
    aliases = obj.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(f"{where}: aliases must be a list of strings, got {aliases!r}.")
    try:
        return GpuModel(obj["name"], tuple(aliases), obj["memory_gb"], obj["model_regex"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_gpu_table(extra_path: str | None = None) -> tuple[GpuModel, ...]:
    """The built-in GPU table, extended or overridden by the JSON file ``extra_path``.

    The file holds a list of objects with the fields of :class:`GpuModel`::

        [
          {"name": "RTX4090", "aliases": ["4090"], "memory_gb": 24,
           "model_regex": "^NVIDIA GeForce RTX 4090$"},
          {"name": "H100", "aliases": [], "memory_gb": 94,
           "model_regex": "^NVIDIA H100 NVL$"}
        ]

    An entry whose ``name`` equals a built-in one (case-insensitive) replaces
    it; others are appended. ``aliases`` may be omitted. Names and aliases must
    be unique across the resulting table.
    """
    by_name = {m.name.upper(): m for m in GPU_MODELS}
    if extra_path is not None:
        try:
            with open(extra_path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the GPU table {extra_path!r} ({exc.strerror}); "
                f"fix the path or unset {GPU_TABLE_ENV}."
            ) from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"GPU table {extra_path!r} is not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise ConfigError(f"GPU table {extra_path!r} must hold a JSON list of GPU objects.")
        for i, obj in enumerate(data):
            model = _model_from_json(obj, f"GPU table {extra_path!r} entry {i}")
            by_name[model.name.upper()] = model  # replaces in place, or appends
    table = tuple(by_name.values())
    try:
        _index(table)  # raises on duplicate names
    except ConfigError as exc:
        raise ConfigError(f"GPU table {extra_path!r}: {exc}") from exc
    return table


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None, _mtime_ns: int) -> tuple[GpuModel, ...]:
    return load_gpu_table(path)


def gpu_table() -> tuple[GpuModel, ...]:
    """The GPU table in effect: built-in plus the file named by ``JUPYTER_REMOTE_GPU_TABLE``.

    Re-read when the file changes.
    """
    path = os.environ.get(GPU_TABLE_ENV) or None
    try:
        mtime = os.stat(path).st_mtime_ns if path else 0
    except OSError:
        return load_gpu_table(path)  # raises with the reason
    return _load_cached(path, mtime)


def _key(label: str) -> str:
    return label.strip().upper().replace("_", "-")


@functools.lru_cache(maxsize=16)
def _index(table: tuple[GpuModel, ...]) -> dict[str, GpuModel]:
    index: dict[str, GpuModel] = {}
    for model in table:
        for label in (model.name, *model.aliases):
            other = index.get(_key(label))
            if other is not None and other is not model:
                raise ConfigError(
                    f"GPU name {label!r} is used by both {other.name} and {model.name}; "
                    "rename one in the GPU table."
                )
            index[_key(label)] = model
    return index


def find_gpu_model(name: str, table: tuple[GpuModel, ...] | None = None) -> GpuModel:
    """The table row for a model name or alias, case-insensitive.

    >>> find_gpu_model("h100-80gb").name
    'H100'
    """
    table = gpu_table() if table is None else table
    model = _index(table).get(_key(name))
    if model is None:
        known = [m.name for m in table]
        hint = difflib.get_close_matches(_key(name), known, n=1)
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"Unknown GPU model {name!r}.{did_you_mean} Known models: {', '.join(known)} "
            f"(or 'any'). To add a model, point {GPU_TABLE_ENV} at a JSON file "
            "(see jupyter_remote.resources.load_gpu_table)."
        )
    return model


def model_for_device(
    device_model: str, memory_mib: int | None = None, table: tuple[GpuModel, ...] | None = None
) -> GpuModel | None:
    """The table row a user names to get this device (NVIDIA's model string), or None.

    Several rows may match one device ("A100" and "A100-40GB" both take an
    A100-SXM4-40GB): the most specific wins, the one with the highest memory
    floor the device meets, then the later row (the table runs from general to
    specific, and an operator's rows come last). That is the name to suggest,
    since it gets this device and no smaller variant.

    >>> model_for_device("NVIDIA A100-SXM4-40GB", 40960).name
    'A100-40GB'
    >>> model_for_device("NVIDIA H100 80GB HBM3").name, model_for_device("NVIDIA RTX A6000")
    ('H100', None)
    """
    table = gpu_table() if table is None else table
    best: tuple[int, int, GpuModel] | None = None
    for position, model in enumerate(table):
        if not model.matches(device_model):
            continue
        if memory_mib is not None and memory_mib < model.min_memory_mib:
            continue
        rank = (model.min_memory_mib, position, model)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


@dataclass(frozen=True)
class GpuChoice:
    """``count`` GPUs of ``model``; ``model=None`` means any NVIDIA GPU."""

    model: GpuModel | None
    count: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not 1 <= self.count <= MAX_GPU_COUNT:
            raise ConfigError(f"GPU count must be from 1 to {MAX_GPU_COUNT}, got {self.count!r}.")

    def __str__(self) -> str:
        name = "any" if self.model is None else self.model.name
        return name if self.count == 1 else f"{name}:{self.count}"

    def matches(self, device_model: str, device_memory_mib: int | None = None) -> bool:
        """Whether one device (model string, memory in MiB if known) fits this choice."""
        if self.model is None:
            return True
        if not self.model.matches(device_model):
            return False
        return device_memory_mib is None or device_memory_mib >= self.model.min_memory_mib


@dataclass(frozen=True)
class GpuRequest:
    """GPU choices in preference order; the first one that can be placed wins.

    >>> str(parse_gpu("H100:8"))
    'H100:8'
    """

    choices: tuple[GpuChoice, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ConfigError("A GPU request needs at least one choice.")

    @property
    def count(self) -> int:
        """GPUs per worker for the first (preferred) choice."""
        return self.choices[0].count

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.choices)


_GPU_EXAMPLES = "e.g. gpu='H100', gpu='H100:8', gpu='any' or gpu=['A100-80GB', 'H100']"


def _parse_choice(item: str, spec: object, table: tuple[GpuModel, ...]) -> GpuChoice:
    name, sep, count_text = (part.strip() for part in item.partition(":"))
    if not name:
        raise ConfigError(f"Empty GPU model in gpu={spec!r}; {_GPU_EXAMPLES}.")
    count = 1
    if sep:
        if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_GPU_COUNT:
            raise ConfigError(
                f"Bad GPU count {count_text!r} in gpu={spec!r}: use a whole number "
                f"from 1 to {MAX_GPU_COUNT} after the colon, e.g. gpu='{name}:8'."
            )
        count = int(count_text)
    if name.lower() == "any":
        return GpuChoice(None, count)
    try:
        return GpuChoice(find_gpu_model(name, table), count)
    except ConfigError as exc:
        raise ConfigError(f"In gpu={spec!r}: {exc}") from exc


def parse_gpu(
    spec: str | list[str] | tuple[str, ...] | GpuRequest | None,
    *,
    table: tuple[GpuModel, ...] | None = None,
) -> GpuRequest | None:
    """Parse ``gpu=``: ``"H100"``, ``"H100:8"``, ``"any:2"``, or a preference list.

    A string may also list choices separated by commas (what ``str()`` of a
    request gives back). ``None`` means no GPU.

    >>> str(parse_gpu(["a100-80gb", "H100"]))
    'A100-80GB, H100'
    """
    if spec is None or isinstance(spec, GpuRequest):
        return spec
    if isinstance(spec, str):
        items = spec.split(",")
    elif isinstance(spec, list | tuple):
        bad = [x for x in spec if not isinstance(x, str)]
        if bad:
            raise TypeError(f"gpu= list items must be str, got {bad[0]!r}; {_GPU_EXAMPLES}.")
        items = list(spec)
    else:
        raise TypeError(
            f"gpu= must be a str, a list of str or None, got {spec!r}; {_GPU_EXAMPLES}."
        )
    if not items or all(not item.strip() for item in items):
        raise ConfigError(
            f"gpu={spec!r} names no GPU; {_GPU_EXAMPLES}, or leave gpu unset for a CPU-only worker."
        )
    table = gpu_table() if table is None else table
    return GpuRequest(tuple(_parse_choice(item, spec, table) for item in items))


_MEMORY_FORMS = (
    "use an int number of MiB (e.g. 2048) or a string like '1024' (MiB), "
    "'512Mi', '16Gi', '1Ti' (binary) or '512M', '2G', '1T' (decimal)"
)
_MEMORY_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([KMGT]i?)B?)?", re.IGNORECASE)
_UNIT_BYTES = {"": 2**20} | {u + "I": 1024 ** (i + 1) for i, u in enumerate("KMGT")}
_UNIT_BYTES |= {u: 1000 ** (i + 1) for i, u in enumerate("KMGT")}


def parse_memory(value: int | str | None) -> int | None:
    """Memory in MiB from an int (MiB) or a string with a unit; rounds up.

    >>> parse_memory(2048), parse_memory("16Gi"), parse_memory("2G")
    (2048, 16384, 1908)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"Bad memory value {value!r}: {_MEMORY_FORMS}.")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, str):
        match = _MEMORY_RE.fullmatch(value.strip())
        if match is None:
            raise ConfigError(f"Bad memory value {value!r}: {_MEMORY_FORMS}.")
        number, unit = match.groups()
        nbytes = Fraction(number) * _UNIT_BYTES[(unit or "").upper()]
        mib = math.ceil(nbytes / 2**20)
    else:
        raise TypeError(f"memory= must be an int or str, got {value!r}; {_MEMORY_FORMS}.")
    if mib <= 0:
        raise ConfigError(f"Bad memory value {value!r}: it must be positive; {_MEMORY_FORMS}.")
    return mib


_CPU_FORMS = "use a positive number of cores (e.g. 0.5, 2, '4') or millicores like '500m'"


def parse_cpu(value: float | int | str | None) -> float | None:
    """CPU cores as a float, from a number, a numeric string or millicores.

    >>> parse_cpu(2), parse_cpu("0.5"), parse_cpu("250m")
    (2.0, 0.5, 0.25)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"Bad cpu value {value!r}: {_CPU_FORMS}.")
    if isinstance(value, int | float):
        cores = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?|\.\d+)(m?)", text)
        if match is None:
            raise ConfigError(f"Bad cpu value {value!r}: {_CPU_FORMS}.")
        cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    else:
        raise TypeError(f"cpu= must be a number or str, got {value!r}; {_CPU_FORMS}.")
    if not math.isfinite(cores) or cores <= 0:
        raise ConfigError(f"Bad cpu value {value!r}: it must be positive; {_CPU_FORMS}.")
    return cores
