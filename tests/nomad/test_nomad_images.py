"""Images on Nomad: built on the node with uv on first use, cached per key, run in place.

The dev agent's raw_exec tasks run the node's plain ``python3``, which has no uv:
the controller sends its own. Each module run points the node's cache at a
fresh directory (``JUPYTER_REMOTE_CACHE`` in the task's env), so the first call
really builds there and the caller's own image cache is not involved.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import conformance_funcs as funcs
import pytest
from agent import DevAgent

import jupyter_remote as jr
from jupyter_remote.backends.base import ControllerAddress, WorkerSpec
from jupyter_remote.backends.nomad._backend import NomadBackend, _Job
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.runtime._fetch import bootstrap_source

pytestmark = pytest.mark.nomad

TOMLI_W = jr.Image.debian_slim().pip_install("tomli-w==1.0.0")


@pytest.fixture(autouse=True)
def _nomad_env(nomad_agent: DevAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_agent.address)


@pytest.fixture(scope="module")
def node_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node-cache")


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[jr.App]:
    app = jr.App(f"img-{request.node.name[:40]}", backend="nomad")
    with app.run():
        yield app


def test_image_is_built_on_the_node_then_reused(
    app: jr.App, node_cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert importlib.util.find_spec("tomli_w") is None, "tomli-w must come from the image only"
    env = {"JUPYTER_REMOTE_CACHE": str(node_cache)}
    entry = node_cache / "images" / TOMLI_W.key
    f = app.function(image=TOMLI_W, env=env)(funcs.image_package_version)
    version, prefix = f.remote()
    assert version == "1.0.0"
    assert prefix == str(entry / "venv")  # the worker runs in the node's image venv
    first = capfd.readouterr().err
    assert "[image] ==> building image" in first  # the node's build log reached the caller
    built = (entry / ".complete").stat().st_mtime_ns, (entry / "build.log").stat().st_mtime_ns
    meta = json.loads((entry / ".complete").read_text())
    assert meta["key"] == TOMLI_W.key
    app.stop()

    g = app.function(image=TOMLI_W, env=env, name="again")(funcs.image_package_version)
    assert g.remote() == ("1.0.0", prefix)
    assert "==> building" not in capfd.readouterr().err  # cached on the node: no build
    again = (entry / ".complete").stat().st_mtime_ns, (entry / "build.log").stat().st_mtime_ns
    assert again == built


def test_broken_package_fails_with_the_installers_message(app: jr.App, node_cache: Path) -> None:
    image = jr.Image.debian_slim().pip_install("this-package-does-not-exist-jr-nomad")
    f = app.function(image=image, env={"JUPYTER_REMOTE_CACHE": str(node_cache)})(funcs.identity)
    with pytest.raises(jr.ImageBuildError, match="this-package-does-not-exist-jr-nomad"):
        f.remote(1)


def test_local_python_source_is_importable_on_the_node(
    app: jr.App, node_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"jr_node_pkg_{uuid.uuid4().hex[:8]}"
    package = tmp_path / "src" / name
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .sub.values import VALUE\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "values.py").write_text("VALUE = 'from the caller'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    image = jr.Image.debian_slim().add_local_python_source(name)

    def module_value(name: str) -> tuple[str, str]:  # nested: shipped by value, not by name
        import importlib

        module = importlib.import_module(name)
        return module.VALUE, str(module.__file__)

    f = app.function(image=image, env={"JUPYTER_REMOTE_CACHE": str(node_cache)})(module_value)
    value, where = f.remote(name)
    assert value == "from the caller"
    # the node's copy in the image, rebuilt from the files the controller sent
    assert where == str(node_cache / "images" / image.key / "site" / name / "__init__.py")


@pytest.mark.parametrize(
    "image",
    [jr.Image.from_registry("python:3.11-slim"), jr.Image.debian_slim().apt_install("curl")],
    ids=["from_registry", "apt_install"],
)
def test_container_layers_need_the_docker_driver(app: jr.App, image: jr.Image) -> None:
    f = app.function(image=image)(funcs.identity)
    with pytest.raises(jr.ConfigError, match="docker driver"):
        f.remote(1)


def test_registry_image_is_the_docker_tasks_image() -> None:
    backend = NomadBackend(lambda _exit: None, NomadConfig(driver="docker"))
    image = jr.Image.from_registry("ghcr.io/acme/torch:2.3").pip_install("six==1.16.0")
    job = _Job("jr-test-img", WorkerSpec("app.f", image=image), image_key=image.key)
    body = backend._job_body(job, ControllerAddress("10.0.0.1", 4000, "00" * 16))
    task = body["Job"]["TaskGroups"][0]["Tasks"][0]
    assert task["Config"]["image"] == "ghcr.io/acme/torch:2.3"
    assert task["Env"]["JUPYTER_REMOTE_IMAGE"] == image.key
    assert "00" * 16 not in json.dumps(body)  # the key is a hash; the token is not there


def test_bootstrap_text_never_says_dash_m_pip() -> None:
    # pyenv's shim runs `python ... -m pip ...` as a child rather than exec'ing it (to rehash
    # after installs): the worker's signals and exit status would then be the shim's.
    assert not re.search(r"\s-m\s+pip\s", bootstrap_source())
