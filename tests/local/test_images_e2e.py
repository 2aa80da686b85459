"""Functions with an Image on the local backend: a package the caller lacks, cached builds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import conformance_funcs as funcs
import pytest

import jupyter_remote as jr


@pytest.fixture
def image_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_REMOTE_CACHE", str(tmp_path))
    return tmp_path


def test_image_package_is_importable_and_the_build_is_cached(
    image_cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert importlib.util.find_spec("tomli_w") is None, "tomli-w must come from the image only"
    image = jr.Image.debian_slim().pip_install("tomli-w==1.0.0")
    app = jr.App("images")
    with app.run():
        f = app.function(image=image)(funcs.image_package_version)
        version, prefix = f.remote()
        assert version == "1.0.0" and str(image_cache) in prefix
        first = capfd.readouterr().err
        assert "[image]" in first  # the build's output reached the caller
        app.stop()
        g = app.function(image=image, name="again")(funcs.image_package_version)
        assert g.remote()[0] == "1.0.0"
        assert "[image]" not in capfd.readouterr().err  # cached: no build


def test_broken_package_shows_the_installer_message(image_cache: Path) -> None:
    image = jr.Image.debian_slim().pip_install("this-package-does-not-exist-jr-e2e")
    app = jr.App("broken-image")
    f = app.function(image=image)(funcs.identity)
    with pytest.raises(jr.ImageBuildError, match="this-package-does-not-exist-jr-e2e"):
        f.remote(1)
    app.stop()


def test_registry_image_needs_nomad(image_cache: Path) -> None:
    app = jr.App("registry-image")
    f = app.function(image=jr.Image.from_registry("python:3.11-slim"))(funcs.identity)
    with pytest.raises(jr.ConfigError, match="docker driver"):
        f.remote(1)
