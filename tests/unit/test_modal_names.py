"""Modal's everyday names: module paths, exception aliases, gpu classes, unserved features."""

from __future__ import annotations

import builtins
import importlib
import sys
from pathlib import Path

import pytest

import jupyter_remote as jr
from jupyter_remote import exceptions
from jupyter_remote._unsupported import NAMES, OPTIONS
from jupyter_remote.api._options import OPTION_NAMES, FunctionOptions
from jupyter_remote.api._progress import TerminalProgress, make_progress

# The classes of modal/exception.py (modal-client, 2026), public ones.
MODAL_EXCEPTIONS = [
    "AlreadyExistsError",
    "AsyncUsageWarning",
    "AuthError",
    "ClientClosed",
    "ConflictError",
    "ConnectionError",
    "DataLossError",
    "DeprecationError",
    "DeserializationError",
    "Error",
    "ExecTimeoutError",
    "ExecutionError",
    "FilesystemExecutionError",
    "FunctionTimeoutError",
    "ImageBuildError",
    "InputCancellation",
    "InteractiveTimeoutError",
    "InternalError",
    "InternalFailure",
    "InvalidError",
    "LogsFetchError",
    "ModuleNotMountable",
    "MountUploadTimeoutError",
    "NotFoundError",
    "OutputExpiredError",
    "PermissionDeniedError",
    "RemoteError",
    "RequestSizeError",
    "ResourceExhaustedError",
    "SandboxFilesystemError",
    "SandboxTerminatedError",
    "SandboxTimeoutError",
    "SerializationError",
    "ServerWarning",
    "ServiceError",
    "SnapshotCreationError",
    "TimeoutError",
    "UnimplementedError",
    "VersionError",
    "VolumeUploadTimeoutError",
    "WorkspaceManagementError",
]
WARNINGS = {"AsyncUsageWarning", "DeprecationError", "PendingDeprecationError", "ServerWarning"}


# -- jupyter_remote.exception ------------------------------------------------------------


def test_every_modal_exception_name_is_an_alias_into_our_tree() -> None:
    from jupyter_remote import exception

    assert set(MODAL_EXCEPTIONS) <= set(exception.__all__)
    assert list(exception.__all__) == sorted(exception.__all__)
    ours = {getattr(exceptions, n) for n in exceptions.__all__}
    for name in exception.__all__:
        value = getattr(exception, name)
        if name in WARNINGS:
            assert value is UserWarning, name
        elif name == "InputCancellation":
            assert value is KeyboardInterrupt  # what a cancelled input gets on the worker
        else:
            assert value in ours, f"{name} is not a class of jupyter_remote.exceptions"


def test_modal_exception_meanings() -> None:
    from jupyter_remote import exception as mx

    assert mx.Error is jr.JupyterRemoteError
    assert mx.InvalidError is jr.ConfigError
    assert issubclass(mx.InvalidError, ValueError)
    assert mx.NotFoundError is jr.NotFoundError
    assert mx.FunctionTimeoutError is jr.FunctionTimeoutError
    assert issubclass(jr.FunctionTimeoutError, mx.TimeoutError)
    assert issubclass(jr.OutputExpiredError, mx.TimeoutError)
    assert issubclass(mx.TimeoutError, builtins.TimeoutError)
    assert mx.ExecutionError is jr.WorkerError
    assert mx.DeserializationError is jr.SerializationError
    assert mx.RemoteError is jr.RemoteError
    assert mx.UnimplementedError is jr.NotSupportedError
    assert issubclass(jr.NotSupportedError, NotImplementedError)


def test_a_missing_volume_is_a_not_found_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_remote.exception import AlreadyExistsError, NotFoundError

    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", str(tmp_path))
    with pytest.raises(NotFoundError, match="create_if_missing=True"):
        jr.Volume.from_name("nope")
    jr.Volume.from_name("there", create_if_missing=True)
    from jupyter_remote.state._volumes import VolumeStore

    with pytest.raises(AlreadyExistsError, match="'there' already exists"):
        VolumeStore().create("there")


def test_a_missing_secret_is_a_not_found_error(tmp_path: Path) -> None:
    from jupyter_remote.exception import AlreadyExistsError, NotFoundError
    from jupyter_remote.state._secrets import LocalSecretStore

    store = LocalSecretStore(tmp_path / "secrets.json")
    with pytest.raises(NotFoundError, match="secret create db"):
        store.get("db")
    store.put("db", {"K": "v"}, overwrite=False)
    with pytest.raises(AlreadyExistsError, match="overwrite=True"):
        store.put("db", {"K": "w"}, overwrite=False)


# -- module paths -------------------------------------------------------------------------

MODULE_PATHS = {
    "app": ["App", "LocalEntrypoint"],
    "cls": ["Cls"],
    "functions": ["Function", "FunctionCall", "gather"],
    "image": ["Image"],
    "output": ["enable_output"],
    "partial_function": ["enter", "exit", "method"],
    "retries": ["Retries"],
    "secret": ["Secret"],
    "volume": ["Volume"],
}


@pytest.mark.parametrize("module", sorted(MODULE_PATHS))
def test_modal_module_paths(module: str) -> None:
    mod = importlib.import_module(f"jupyter_remote.{module}")
    for name in MODULE_PATHS[module]:
        value = getattr(mod, name)
        top = getattr(jr, name, None)
        assert top is None or value is top, f"jupyter_remote.{module}.{name}"


def test_submodules_are_reachable_after_import_jupyter_remote_alone() -> None:
    code = (
        "import jupyter_remote as jr\n"
        "print(jr.gpu.H100(count=2), jr.exception.NotFoundError.__name__, jr.functions.gather)"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.startswith("H100:2 NotFoundError <function FunctionCall.gather")


def test_gather_is_function_call_gather() -> None:
    from jupyter_remote.functions import gather

    assert gather == jr.FunctionCall.gather


# -- jupyter_remote.gpu ------------------------------------------------------------------


def test_gpu_classes_are_the_gpu_strings() -> None:
    from jupyter_remote import gpu

    assert gpu.H100() == "H100"
    assert gpu.T4(count=4) == "T4:4"
    assert gpu.A100() == "A100-40GB"  # Modal's default size
    assert gpu.A100(size="80GB", count=2) == "A100-80GB:2"
    assert gpu.Any() == "any"
    for cls in (gpu.T4, gpu.L4, gpu.A10G, gpu.L40S, gpu.H100, gpu.H200, gpu.B200, gpu.A100):
        assert str(FunctionOptions.parse(gpu=cls()).gpu) == cls()  # every one is known here
    assert str(FunctionOptions.parse(gpu=gpu.H100(count=8)).gpu) == "H100:8"


def test_gpu_class_bad_values() -> None:
    from jupyter_remote import gpu

    with pytest.raises(jr.ConfigError, match="size='20GB'"):
        gpu.A100(size="20GB")
    with pytest.raises(jr.ConfigError, match="count=0"):
        gpu.H100(count=0)


# -- what is not served -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Sandbox", "NetworkFileSystem", "CloudBucketMount", "forward"])
def test_unserved_top_level_names_say_so(name: str) -> None:
    with pytest.raises(jr.NotSupportedError, match=rf"jupyter_remote\.{name} is a Modal feature"):
        getattr(jr, name)


def test_from_import_of_an_unserved_name_says_so() -> None:
    with pytest.raises(jr.NotSupportedError, match=r"use a jr.Volume"):
        exec("from jupyter_remote import NetworkFileSystem", {})


def test_planned_names_say_not_yet() -> None:
    for name in ("Dict", "Queue", "asgi_app", "fastapi_endpoint", "batched"):
        with pytest.raises(jr.NotSupportedError, match="not yet supported"):
            getattr(jr, name)
    from jupyter_remote import partial_function

    with pytest.raises(jr.NotSupportedError, match=r"partial_function\.wsgi_app is not yet"):
        partial_function.wsgi_app  # noqa: B018


def test_stub_was_renamed() -> None:
    with pytest.raises(jr.NotSupportedError, match=r"use jr.App"):
        jr.Stub  # noqa: B018


def test_other_names_are_still_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        jr.no_such_thing  # noqa: B018
    assert not hasattr(jr, "__wrapped__")


def test_the_table_never_shadows_a_served_name() -> None:
    assert not set(NAMES) & set(jr.__all__)
    assert not set(OPTIONS) & set(OPTION_NAMES)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("region", "us-east", "option region= is a Modal feature .* datacenters/node_pool"),
        ("cloud", "aws", "option cloud= is a Modal feature"),
        ("enable_memory_snapshot", True, "@enter"),
        ("network_file_systems", {}, "use volumes="),
        ("proxy", None, "option proxy="),
        ("keep_warm", 1, "renamed: use min_containers="),
    ],
)
def test_unserved_options_name_the_feature(option: str, value: object, match: str) -> None:
    app = jr.App("unserved")
    with pytest.raises(jr.NotSupportedError, match=match):
        app.function(**{option: value})
    with pytest.raises(jr.NotSupportedError, match=match):
        app.cls(**{option: value})


def test_a_typo_is_still_a_type_error_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match="did you mean 'timeout'"):
        jr.App("typo").function(timout=3)


# -- accepted Modal options ---------------------------------------------------------------


def test_single_use_containers_and_max_inputs() -> None:
    assert FunctionOptions.parse(single_use_containers=True).single_use_containers
    assert FunctionOptions.parse(max_inputs=1).single_use_containers
    assert not FunctionOptions.parse().single_use_containers
    with pytest.raises(jr.NotSupportedError, match=r"max_inputs=5: .*single_use_containers=True"):
        FunctionOptions.parse(max_inputs=5)
    with pytest.raises(TypeError, match="single_use_containers must be True or False"):
        FunctionOptions.parse(single_use_containers="yes")


def test_ephemeral_disk_serialized_include_source() -> None:
    assert FunctionOptions.parse(ephemeral_disk=2048).ephemeral_disk == 2048
    assert FunctionOptions.parse().ephemeral_disk is None
    with pytest.raises(jr.ConfigError, match="ephemeral_disk=0"):
        FunctionOptions.parse(ephemeral_disk=0)
    FunctionOptions.parse(serialized=True, include_source=False)  # both always hold here


def test_volume_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_VOLUMES_URL", str(tmp_path))
    v1 = jr.Volume.from_name("v", create_if_missing=True, version=1)
    v2 = jr.Volume.from_name("v", version=2)
    assert v1.name == v2.name == "v"
    with pytest.raises(jr.ConfigError, match=r"version=3.*version 1 or 2"):
        jr.Volume.from_name("v", version=3)


# -- App(image=), image.imports(), enable_output, is_local -----------------------------------


def test_app_image_is_readable_and_the_default_of_its_functions() -> None:
    image = jr.Image.debian_slim().pip_install("six")
    app = jr.App("img", image=image, tags={"team": "ml"}, include_source=True)
    assert app.image is image
    assert app.tags == {"team": "ml"}
    assert jr.App("none").image is None

    @app.function()
    def f() -> None: ...

    assert f.options.image is image


def test_image_imports_swallows_import_errors_in_the_caller() -> None:
    image = jr.Image.debian_slim()
    with image.imports():
        import a_package_only_in_the_image  # type: ignore[import-not-found]  # noqa: F401
    with pytest.raises(ZeroDivisionError), image.imports():
        1 / 0  # noqa: B018


def test_image_imports_raises_in_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_TASK_ID", "w-1")
    assert not jr.is_local()
    with pytest.raises(ImportError), jr.Image.debian_slim().imports():
        import a_package_only_in_the_image  # type: ignore[import-not-found]  # noqa: F401


def test_is_local_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTER_REMOTE_TASK_ID", raising=False)
    assert jr.is_local()


def test_enable_output_overrides_the_progress_setting() -> None:
    assert make_progress("f.map", 3, False) is None
    with jr.enable_output():
        assert isinstance(make_progress("f.map", 3, False), TerminalProgress)
        with jr.enable_output(show_progress=False):
            assert make_progress("f.map", 3, True) is None
        assert make_progress("f.map", 3, False) is not None
    assert make_progress("f.map", 3, False) is None
    with pytest.raises(TypeError), jr.enable_output(show_progress="yes"):  # type: ignore[arg-type]
        pass


def test_python_version_of_another_minor_is_refused_naming_what_to_do() -> None:
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.13"
    with pytest.raises(jr.ConfigError, match=rf"python_version='{other}' differs .*cloudpickle"):
        jr.Image.debian_slim(python_version=other)
    with pytest.raises(jr.ConfigError, match=rf"under Python {other}"):
        jr.Image.from_registry("python:slim", add_python=other)
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    jr.Image.debian_slim(python_version=f"{mine}.1")  # another patch release is fine


# -- Image and App methods of Modal's ---------------------------------------------------------


def test_pip_install_from_requirements(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# pinned\nsix==1.16.0  # why\n\npandas>=2\n")
    image = jr.Image.debian_slim().pip_install_from_requirements(req)
    assert image.key == jr.Image.debian_slim().pip_install("pandas>=2", "six==1.16.0").key
    req.write_text("six\n-r other.txt\n")
    with pytest.raises(jr.ConfigError, match=r"line 2: '-r other.txt' is an installer option"):
        jr.Image.debian_slim().pip_install_from_requirements(req)
    with pytest.raises(jr.ConfigError, match="is not a file"):
        jr.Image.debian_slim().pip_install_from_requirements(tmp_path / "missing.txt")


def test_unserved_image_methods_say_so() -> None:
    with pytest.raises(jr.NotSupportedError, match=r"Image\.from_dockerfile is a Modal feature"):
        jr.Image.from_dockerfile("Dockerfile")
    with pytest.raises(jr.NotSupportedError, match=r"Image\.run_function .*@enter"):
        jr.Image.debian_slim().run_function(print)
    with pytest.raises(AttributeError):
        jr.Image.debian_slim().no_such_method  # noqa: B018
    with pytest.raises(AttributeError):
        jr.Image.no_such_classmethod  # noqa: B018


def test_images_and_apps_still_pickle_and_copy() -> None:
    import copy
    import pickle

    image = jr.Image.debian_slim().pip_install("six")
    assert pickle.loads(pickle.dumps(image)) == image
    assert copy.deepcopy(image) == image
    app = jr.App("copied", image=image)
    assert copy.copy(app).image is image


def test_unserved_app_attributes_and_detach() -> None:
    app = jr.App("modal-app")
    with pytest.raises(AttributeError):
        app.no_such_attribute  # noqa: B018
    detach = pytest.raises(jr.NotSupportedError, match=r"detach=True\) is not yet supported")
    with detach, app.run(detach=True):
        pass


def test_app_include_adds_the_other_apps_functions() -> None:
    other = jr.App("other")

    @other.function()
    def helper() -> int:
        return 1

    main = jr.App("main")
    assert main.include(other) is main
    assert main.registered_functions["helper"] is helper
