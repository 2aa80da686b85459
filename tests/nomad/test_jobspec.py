"""Worker job specs: the whole JSON per driver, every option, and a real Nomad's verdict.

Tests marked ``nomad`` check the specs with the ``nomad`` binary. They start a
dev agent (tests/nomad/agent.py) on random 127.0.0.1 ports with its state in
a temporary directory.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_remote.backends.base import ControllerAddress, WorkerSpec
from jupyter_remote.backends.nomad import _jobspec
from jupyter_remote.backends.nomad._gpu import device_block
from jupyter_remote.backends.nomad._jobspec import (
    build_worker_job,
    job_variable_path,
    task_resources,
)
from jupyter_remote.exceptions import ConfigError
from jupyter_remote.resources import parse_gpu

HERE = Path(__file__).parent
REPO = HERE.parent.parent
NOMAD = shutil.which("nomad")
needs_nomad = pytest.mark.skipif(NOMAD is None, reason="needs the `nomad` binary on PATH")

ARGS = [
    "-m",
    "jupyter_remote.runtime",
    "--connect",
    "10.0.0.5:43117",
    "--worker-id",
    "${NOMAD_ALLOC_ID}",
]
META = {
    "app": "demo",
    "function": "demo.embed",
    "owner": "alice",
    "session": "3f2a9c41",
    "controller": "10.0.0.5:43117",
}


def build(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "job_id": "jr-demo-embed-3f2a9c41",
        "spec": WorkerSpec("demo.embed", cpu=2, memory=4096),
        "count": 1,
        "driver": "raw_exec",
        "datacenters": ["*"],
        "node_pool": None,
        "namespace": "default",
        "region": None,
        "priority": 50,
        "python": "python3",
        "docker_image": "python:3.11-slim",
        "command_args": ARGS,
        "env": {},
        "meta": META,
    }
    kwargs.update(overrides)
    return build_worker_job(**kwargs)


def task_of(job: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = job["Job"]["TaskGroups"][0]["Tasks"][0]
    return task


# -- the whole job, per driver ------------------------------------------------------------------

H100_BLOCK = {
    "Name": "nvidia/gpu",
    "Count": 2,
    "Constraints": [
        {"LTarget": "${device.model}", "RTarget": "^NVIDIA H100( .*)?$", "Operand": "regexp"},
        {"LTarget": "${device.attr.memory}", "RTarget": "73728 MiB", "Operand": ">="},
    ],
    "Affinities": [],
}


def test_raw_exec_job_with_gpu_and_token() -> None:
    spec = WorkerSpec(
        "demo.embed", cpu=4, memory=32768, gpu=parse_gpu("H100:2"), env={"HF_HOME": "/data/hf"}
    )
    job = build(
        spec=spec,
        count=3,
        datacenters=["dc1", "dc2"],
        node_pool="gpu",
        region="eu",
        priority=70,
        python="/opt/py311/bin/python",
        env={"EXTRA": "1"},
        kill_timeout_s=7.5,
        token_variable_path="nomad/jobs/jr-demo-embed-3f2a9c41",
    )
    assert job == {
        "Job": {
            "ID": "jr-demo-embed-3f2a9c41",
            "Name": "jr-demo-embed-3f2a9c41",
            "Type": "batch",
            "Namespace": "default",
            "Region": "eu",
            "Datacenters": ["dc1", "dc2"],
            "NodePool": "gpu",
            "Priority": 70,
            "Meta": META,
            "TaskGroups": [
                {
                    "Name": "workers",
                    "Count": 3,
                    "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                    "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                    "Tasks": [
                        {
                            "Name": "worker",
                            "Driver": "raw_exec",
                            "Config": {"command": "/opt/py311/bin/python", "args": ARGS},
                            "Env": {
                                "HF_HOME": "/data/hf",
                                "EXTRA": "1",
                                "JUPYTER_REMOTE_GPU_FROM_NVIDIA": "1",
                            },
                            "Resources": {"Cores": 4, "MemoryMB": 32768, "Devices": [H100_BLOCK]},
                            "KillSignal": "SIGTERM",
                            "KillTimeout": 7_500_000_000,
                            "Templates": [
                                {
                                    "EmbeddedTmpl": (
                                        '{{ with nomadVar "nomad/jobs/jr-demo-embed-3f2a9c41" }}'
                                        "JUPYTER_REMOTE_TOKEN="
                                        '{{ index . (printf "w%s" (env "NOMAD_ALLOC_INDEX")) }}'
                                        "{{ end }}\n"
                                    ),
                                    "DestPath": "secrets/token.env",
                                    "Perms": "0600",
                                    "Envvars": True,
                                    "ChangeMode": "noop",
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    }


def test_docker_job() -> None:
    job = build(
        driver="docker",
        spec=WorkerSpec("demo.f", cpu=0.5, memory=2048),
        docker_image="ghcr.io/acme/py:3.11",
        python="/ignored/for/docker",
    )
    assert job == {
        "Job": {
            "ID": "jr-demo-embed-3f2a9c41",
            "Name": "jr-demo-embed-3f2a9c41",
            "Type": "batch",
            "Namespace": "default",
            "Datacenters": ["*"],
            "Priority": 50,
            "Meta": META,
            "TaskGroups": [
                {
                    "Name": "workers",
                    "Count": 1,
                    "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                    "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                    "Tasks": [
                        {
                            "Name": "worker",
                            "Driver": "docker",
                            "Config": {
                                "image": "ghcr.io/acme/py:3.11",
                                "command": "python3",
                                "args": ARGS,
                                "network_mode": "host",
                            },
                            "Env": {},
                            "Resources": {"CPU": 500, "MemoryMB": 2048},
                            "KillSignal": "SIGTERM",
                            "KillTimeout": 10_000_000_000,
                        }
                    ],
                }
            ],
        }
    }


def test_exec_job_may_use_gpus() -> None:
    job = build(driver="exec", spec=WorkerSpec("demo.f", gpu=parse_gpu("H100:2")))
    assert task_of(job) == {
        "Name": "worker",
        "Driver": "exec",
        "Config": {"command": "python3", "args": ARGS},
        "Env": {"JUPYTER_REMOTE_GPU_FROM_NVIDIA": "1"},
        "Resources": {"CPU": 1000, "MemoryMB": 1024, "Devices": [H100_BLOCK]},
        "KillSignal": "SIGTERM",
        "KillTimeout": 10_000_000_000,
    }
    assert "Region" not in job["Job"] and "NodePool" not in job["Job"]


def test_the_job_is_plain_json() -> None:
    job = build(spec=WorkerSpec("demo.f", gpu=parse_gpu(["H100", "A100-80GB"])))
    assert json.loads(json.dumps(job)) == job


# -- resources ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (None, None, {"CPU": 1000, "MemoryMB": 1024}),
        (1, 512, {"Cores": 1, "MemoryMB": 512}),
        (2.0, 16384, {"Cores": 2, "MemoryMB": 16384}),
        (0.5, None, {"CPU": 500, "MemoryMB": 1024}),
        (1.5, None, {"CPU": 1500, "MemoryMB": 1024}),
        (0.125, None, {"CPU": 125, "MemoryMB": 1024}),
        (0.0001, None, {"CPU": 1, "MemoryMB": 1024}),  # Nomad's minimum is 1 MHz
        (2.3334, None, {"CPU": 2334, "MemoryMB": 1024}),  # rounded up, never down
    ],
)
def test_cpu_and_memory_mapping(
    cpu: float | None, memory: int | None, expected: dict[str, int]
) -> None:
    assert task_resources(WorkerSpec("f", cpu=cpu, memory=memory)) == expected
    assert task_of(build(spec=WorkerSpec("f", cpu=cpu, memory=memory)))["Resources"] == expected


@pytest.mark.parametrize(
    "gpu",
    [
        "T4",
        "L4",
        "A10",
        "A10G",
        "L40S",
        "A100",
        "A100-40GB",
        "A100-80GB",
        "H100",
        "H200",
        "B200",
        "any",
        "H100:8",
        "any:4",
        "A100-80GB:2, H100:2",
        "H100, any",
    ],
)
def test_gpu_resources_are_the_device_block(gpu: str) -> None:
    request = parse_gpu(gpu)
    assert request is not None
    resources = task_of(build(spec=WorkerSpec("f", cpu=8, gpu=request)))["Resources"]
    assert resources == {"Cores": 8, "MemoryMB": 1024, "Devices": [device_block(request)]}


def test_mixed_gpu_counts_fail_when_building() -> None:
    with pytest.raises(ConfigError, match="different GPU counts"):
        build(spec=WorkerSpec("f", gpu=parse_gpu(["H100:8", "A100:4"])))


# -- environment and the token ------------------------------------------------------------------


def test_env_merges_spec_env_then_env_and_env_wins() -> None:
    spec = WorkerSpec("f", env={"A": "spec", "B": "spec"})
    assert task_of(build(spec=spec, env={"B": "env", "C": "env"}))["Env"] == {
        "CUDA_VISIBLE_DEVICES": "",
        "A": "spec",
        "B": "env",
        "C": "env",
    }


def test_raw_exec_without_gpus_hides_the_nodes_gpus() -> None:
    assert task_of(build(driver="raw_exec"))["Env"] == {"CUDA_VISIBLE_DEVICES": ""}
    # Only raw_exec needs it: docker and exec get no GPU device unless Nomad assigns one.
    assert task_of(build(driver="docker"))["Env"] == {}
    assert task_of(build(driver="exec"))["Env"] == {}
    # The user may still choose.
    assert task_of(build(env={"CUDA_VISIBLE_DEVICES": "0"}))["Env"] == {"CUDA_VISIBLE_DEVICES": "0"}


@pytest.mark.parametrize("driver", ["raw_exec", "exec", "docker"])
def test_gpu_workers_map_nvidia_visible_devices(driver: str) -> None:
    env = task_of(build(driver=driver, spec=WorkerSpec("f", gpu=parse_gpu("any"))))["Env"]
    assert env == {"JUPYTER_REMOTE_GPU_FROM_NVIDIA": "1"}


def test_the_token_never_appears_in_the_spec() -> None:
    address = ControllerAddress("10.0.0.5", 43117, "tok-3c1d9a7e5f0b2468ace13579bdf02468")
    # Handing the worker's whole environment to the builder is refused ...
    with pytest.raises(ConfigError, match="JUPYTER_REMOTE_TOKEN must not be in a Nomad job"):
        build(env=address.worker_env())
    with pytest.raises(ConfigError, match="token_variable_path"):
        build(spec=WorkerSpec("f", env=address.worker_env()))
    # ... and the way that works keeps every value but the token, which comes from a Variable.
    env = {k: v for k, v in address.worker_env().items() if k != "JUPYTER_REMOTE_TOKEN"}
    env |= {"OTHER": "value"}
    job = build(
        env=env,
        spec=WorkerSpec("f", gpu=parse_gpu("H100"), env={"HF_HOME": "/hf"}),
        token_variable_path=job_variable_path("jr-demo-embed-3f2a9c41"),
    )
    text = json.dumps(job)
    assert address.token not in text
    assert "tok-" not in text
    assert task_of(job)["Env"]["OTHER"] == "value"
    assert "JUPYTER_REMOTE_TOKEN" not in task_of(job)["Env"]
    assert "JUPYTER_REMOTE_TOKEN={{ index ." in task_of(job)["Templates"][0]["EmbeddedTmpl"]


def test_the_tls_pin_travels_with_the_credentials() -> None:
    address = ControllerAddress("10.0.0.5", 43117, "tok-1", tls_fingerprint="ab" * 32)
    with pytest.raises(ConfigError, match="pass tls_pinned"):
        build(env={"JUPYTER_REMOTE_TLS_FINGERPRINT": str(address.tls_fingerprint)})
    path = job_variable_path("jr-demo-embed-3f2a9c41")
    job = build(token_variable_path=path, tls_pinned=True)
    assert "ab" * 32 not in json.dumps(job)
    template = task_of(job)["Templates"][0]["EmbeddedTmpl"]
    assert "\nJUPYTER_REMOTE_TLS_FINGERPRINT={{ .fingerprint }}{{ end }}" in template


def test_no_template_without_a_variable_path() -> None:
    assert "Templates" not in task_of(build())


@pytest.mark.parametrize(
    "path", ["", "nomad/jobs/has space", 'nomad/jobs/x" }}{{ .other', "nomad/jobs/a.b", "x" * 129]
)
def test_bad_variable_paths_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="Bad Nomad Variable path"):
        build(token_variable_path=path)


def test_job_variable_path() -> None:
    assert job_variable_path("jr-demo-1") == "nomad/jobs/jr-demo-1"


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"driver": "podman"}, "Unknown Nomad task driver 'podman'.*raw_exec, exec, docker"),
        ({"driver": "docker", "docker_image": ""}, "docker_image option"),
        ({"driver": "raw_exec", "python": ""}, "python option"),
        ({"driver": "exec", "python": ""}, "python option"),
        ({"count": -1}, "Worker count"),
        ({"count": True}, "Worker count"),
        ({"priority": 0}, "priority must be an int from 1 to 100"),
        ({"priority": 101}, "priority"),
        ({"datacenters": []}, "datacenters must be a non-empty list"),
        ({"datacenters": [""]}, "datacenters"),
        ({"job_id": ""}, "Bad Nomad job ID"),
        ({"job_id": "jr demo"}, "Bad Nomad job ID"),
        ({"kill_timeout_s": -1}, "kill_timeout_s"),
        ({"kill_timeout_s": float("nan")}, "kill_timeout_s"),
        ({"env": {"A": 1}}, "env keys and values must be strings"),
        ({"meta": {"app": None}}, "meta keys and values must be strings"),
    ],
)
def test_invalid_options_raise_config_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_count_zero_is_a_valid_job_to_scale_up_later() -> None:
    assert build(count=0)["Job"]["TaskGroups"][0]["Count"] == 0


def test_docstring_examples() -> None:
    assert doctest.testmod(_jobspec, raise_on_error=True).attempted >= 5


# -- a real Nomad -----------------------------------------------------------------------------


def _load_agent_helper() -> Any:
    spec = importlib.util.spec_from_file_location("_jr_nomad_dev_agent", HERE / "agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nomad_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    agent = _load_agent_helper().start_dev_agent(tmp_path_factory.mktemp("nomad"))
    try:
        yield str(agent.address)
    finally:
        agent.stop()


def _call(address: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(address + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode()}") from exc
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode()


def _validate(address: str, job: dict[str, Any]) -> None:
    verdict = _call(address, "POST", "/v1/validate/job", job)
    assert verdict["DriverConfigValidated"] is True
    assert not verdict["ValidationErrors"], verdict["Error"]
    assert not verdict["Warnings"], verdict["Warnings"]


GPU_STRINGS: list[str | list[str]] = [
    "T4",
    "L4",
    "A10",
    "A10G",
    "L40S",
    "A100",
    "A100-40GB",
    "A100-80GB",
    "H100",
    "H200",
    "B200",
    "any",
    "H100:8",
    ["A100-80GB:2", "H100:2"],
    ["H100", "any"],
    ["T4", "L4", "A10G", "L40S", "A100", "H100", "H200", "B200", "A10"],  # 9: weights to 1
]


@pytest.mark.nomad
@needs_nomad
@pytest.mark.parametrize("driver", ["raw_exec", "exec", "docker"])
def test_nomad_accepts_the_jobs(nomad_address: str, driver: str) -> None:
    token_path = job_variable_path("jr-demo-embed-3f2a9c41")
    for cpu, memory in [(None, None), (2, 4096), (0.25, 512)]:
        _validate(nomad_address, build(driver=driver, spec=WorkerSpec("f", cpu, memory)))
    for gpu in GPU_STRINGS:  # the regexes must compile in Go's RE2
        spec = WorkerSpec("f", cpu=4, memory=16384, gpu=parse_gpu(gpu), env={"A": "1"})
        _validate(nomad_address, build(driver=driver, spec=spec, token_variable_path=token_path))


@pytest.mark.nomad
@needs_nomad
def test_nomad_rejects_what_we_would_otherwise_get_wrong(nomad_address: str) -> None:
    """Guards for the mapping's choices: cpu XOR cores, non-zero affinity weights."""
    job = build(spec=WorkerSpec("f", cpu=2, gpu=parse_gpu(["H100", "A100"])))
    resources = task_of(job)["Resources"]
    resources["CPU"] = 100
    resources["Devices"][0]["Affinities"][0]["Weight"] = 0
    verdict = _call(nomad_address, "POST", "/v1/validate/job", job)
    assert "only ask for 'cpu' or 'cores'" in verdict["Error"]
    assert "Affinity weight cannot be zero" in verdict["Error"]


def _example_job() -> dict[str, Any]:
    """build_worker_job with the values nomad_jobs/worker.nomad.hcl shows."""
    spec = WorkerSpec(
        "demo.embed",
        cpu=4,
        memory=32768,
        gpu=parse_gpu(["H100:2", "A100-80GB:2"]),
        env={"HF_HOME": "/data/hf"},
    )
    path = job_variable_path("jr-demo-embed-3f2a9c41")
    return build(spec=spec, token_variable_path=path, dispatched=True)


def _assert_contains(expected: Any, actual: Any, where: str = "Job") -> None:
    """Every field build_worker_job sets has the same value in the parsed HCL."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            _assert_contains(value, actual.get(key), f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_contains(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, where


@pytest.mark.nomad
@needs_nomad
def test_worker_hcl_is_valid_and_the_same_shape(nomad_address: str) -> None:
    hcl = REPO / "nomad_jobs" / "worker.nomad.hcl"
    proc = subprocess.run(
        [str(NOMAD), "job", "validate", f"-address={nomad_address}", str(hcl)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    parsed = _call(
        nomad_address, "POST", "/v1/jobs/parse", {"JobHCL": hcl.read_text(), "Canonicalize": False}
    )
    _assert_contains(_example_job()["Job"], parsed)


@pytest.mark.nomad
@needs_nomad
def test_agent_configs_are_valid(tmp_path: Path) -> None:
    # agent-dev.hcl is used with -dev; validating it alone needs a mode and a data_dir.
    mode = tmp_path / "mode.hcl"
    mode.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "server {\n  enabled = true\n  bootstrap_expect = 1\n}\nclient {\n  enabled = true\n}\n"
    )
    for files in (["agent-dev.hcl", str(mode)], ["agent-gpu-client.hcl"]):
        paths = [
            str(REPO / "nomad_jobs" / f) if f.endswith("hcl") and "/" not in f else f for f in files
        ]
        proc = subprocess.run(
            [str(NOMAD), "config", "validate", *paths],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.nomad
@needs_nomad
def test_dispatched_workers_run_with_their_own_credential_from_a_variable(
    nomad_address: str,
) -> None:
    """Register a real parameterized job, dispatch two workers, and read what each saw."""
    job_id = f"jr-test-{int(time.time() * 1000)}"
    path = job_variable_path(job_id)
    items = {"w3": "tok-0f8e7d6c", "w7": "tok-1a2b3c4d", "fingerprint": "ab" * 32}
    _call(nomad_address, "PUT", f"/v1/var/{path}", {"Path": path, "Items": items})
    script = (
        "import os, stat; print('token=' + os.environ.get('JUPYTER_REMOTE_TOKEN', '<missing>'), "
        "'pin=' + os.environ.get('JUPYTER_REMOTE_TLS_FINGERPRINT', '<missing>')[:4], "
        "'cuda=' + repr(os.environ.get('CUDA_VISIBLE_DEVICES')), "
        "'worker=' + os.environ['NOMAD_META_worker'], "
        "'mode=' + oct(stat.S_IMODE(os.stat('secrets/token.env').st_mode)), flush=True)"
    )
    job = build(
        job_id=job_id,
        count=1,
        spec=WorkerSpec("test.f", cpu=0.1, memory=128),
        python=sys.executable,
        command_args=["-c", script],
        kill_timeout_s=2,
        token_variable_path=path,
        tls_pinned=True,
        dispatched=True,
    )
    assert not any(v in json.dumps(job) for v in items.values())
    _call(nomad_address, "PUT", "/v1/jobs", job)
    children = []
    try:
        for number in (3, 7):
            reply = _call(
                nomad_address,
                "POST",
                f"/v1/job/{job_id}/dispatch",
                {"Meta": {"worker": str(number)}},
            )
            children.append(reply["DispatchedJobID"])
        deadline = time.monotonic() + 60
        allocs: list[Any] = []
        while time.monotonic() < deadline:
            allocs = [
                a for c in children for a in _call(nomad_address, "GET", f"/v1/job/{c}/allocations")
            ]
            if len(allocs) == 2 and all(
                a["ClientStatus"] in ("complete", "failed") for a in allocs
            ):
                break
            time.sleep(0.25)
        assert [a["ClientStatus"] for a in allocs] == ["complete", "complete"], allocs
        outputs = sorted(
            _call(
                nomad_address,
                "GET",
                f"/v1/client/fs/logs/{a['ID']}?task=worker&type=stdout&plain=true&origin=start",
            ).strip()
            for a in allocs
        )
        assert outputs == [
            "token=tok-0f8e7d6c pin=abab cuda='' worker=3 mode=0o600",
            "token=tok-1a2b3c4d pin=abab cuda='' worker=7 mode=0o600",
        ]
    finally:
        for child in children:
            _call(nomad_address, "DELETE", f"/v1/job/{child}?purge=true")
        _call(nomad_address, "DELETE", f"/v1/job/{job_id}?purge=true")
        _call(nomad_address, "DELETE", f"/v1/var/{path}")
