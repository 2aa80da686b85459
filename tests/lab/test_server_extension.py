"""The server extension's REST API through a real ``jupyter server`` (a subprocess, with a token).

The extension is enabled by the config file the package installs, not by these
tests: the server is started with nothing but a token, a port and a base URL.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jupyter_proc import JUPYTER, Jupyter, free_port, isolated_env, running_jupyter

pytestmark = pytest.mark.slow

SECRET_VALUES = ("s3cr3t-hunter2-value", "another-Pa55word-xyz")

# Every verb of every handler, with a path that reaches it.
ENDPOINTS = [
    ("GET", "backend"),
    ("GET", "running"),
    ("GET", "running/jr-x-app-f/logs"),
    ("POST", "running/jr-x-app-f/stop"),
    ("GET", "volumes"),
    ("POST", "volumes"),
    ("DELETE", "volumes/v"),
    ("GET", "volumes/v/files"),
    ("PUT", "volumes/v/files?path=/a"),
    ("DELETE", "volumes/v/files?path=/a"),
    ("GET", "volumes/v/download?path=/a"),
    ("GET", "secrets"),
    ("POST", "secrets"),
    ("PUT", "secrets/s"),
    ("DELETE", "secrets/s"),
]


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    with running_jupyter(tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@pytest.fixture
def api(jupyter: Jupyter) -> Iterator[httpx.Client]:
    with jupyter.client() as client:
        yield client


def _error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def test_the_install_enables_both_extensions(jupyter: Jupyter) -> None:
    env = isolated_env(jupyter.home)
    server = subprocess.run(
        [JUPYTER, "server", "extension", "list"], env=env, capture_output=True, text=True
    )
    assert "jupyter_remote.lab" in server.stdout + server.stderr
    assert "enabled" in (server.stdout + server.stderr).split("jupyter_remote.lab", 1)[1][:40]
    lab = subprocess.run([JUPYTER, "labextension", "list"], env=env, capture_output=True, text=True)
    assert "jupyter-remote" in lab.stdout + lab.stderr, "run `make setup` to build the sidebar"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_verb_needs_the_token(jupyter: Jupyter, method: str, path: str) -> None:
    with jupyter.client(token=False) as anonymous:
        assert anonymous.request(method, path, content=b"{}").status_code == 403
        wrong = {"Authorization": "token not-the-token"}
        assert anonymous.request(method, path, headers=wrong, content=b"{}").status_code == 403
    assert not (jupyter.home / "volumes" / "v").exists()


def test_a_browser_session_needs_the_xsrf_token_to_change_anything(jupyter: Jupyter) -> None:
    with httpx.Client(base_url=jupyter.url, timeout=30) as browser:
        browser.get(f"lab?token={jupyter.token}")  # logs in: sets the login and _xsrf cookies
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf
        assert browser.get("jupyter-remote/api/volumes").status_code == 200
        body = {"name": "xsrf-vol"}
        refused = browser.post("jupyter-remote/api/volumes", json=body)
        assert refused.status_code == 403
        assert not (jupyter.home / "volumes" / "xsrf-vol").exists()
        made = browser.post("jupyter-remote/api/volumes", json=body, headers={"X-XSRFToken": xsrf})
        assert made.status_code == 201, made.text
        assert (
            browser.delete(
                "jupyter-remote/api/volumes/xsrf-vol", headers={"X-XSRFToken": xsrf}
            ).status_code
            == 204
        )


def test_a_volume_from_creation_to_deletion(api: httpx.Client, jupyter: Jupyter) -> None:
    assert api.post("volumes", json={"name": "datasets"}).status_code == 201
    assert "already exists" in _error(api.post("volumes", json={"name": "datasets"}), 409)
    listed = api.get("volumes").json()
    assert [v["name"] for v in listed["volumes"]] == ["datasets"]
    assert listed["url"] == str(jupyter.home / "volumes")

    data = bytes(range(256)) * 10
    put = api.put("volumes/datasets/files", params={"path": "/raw/train.bin"}, content=data)
    assert put.status_code == 201, put.text
    assert put.json() == {**put.json(), "path": "/raw/train.bin", "type": "file", "size": 2560}
    assert (jupyter.home / "volumes" / "datasets" / "raw" / "train.bin").read_bytes() == data
    again = api.put("volumes/datasets/files", params={"path": "raw/train.bin"}, content=b"x")
    assert "force" in _error(again, 409)
    forced = api.put(
        "volumes/datasets/files", params={"path": "raw/train.bin", "force": "1"}, content=data[:9]
    )
    assert forced.status_code == 201

    root = api.get("volumes/datasets/files").json()
    assert root["path"] == "/"
    assert [(e["path"], e["name"], e["type"]) for e in root["entries"]] == [("/raw", "raw", "dir")]
    inner = api.get("volumes/datasets/files", params={"path": "/raw"}).json()["entries"]
    assert [(e["name"], e["size"]) for e in inner] == [("train.bin", 9)]

    got = api.get("volumes/datasets/download", params={"path": "/raw/train.bin"})
    assert got.status_code == 200
    assert got.content == data[:9]
    assert got.headers["content-type"] == "application/octet-stream"
    assert "train.bin" in got.headers["content-disposition"]
    assert "is a directory" in _error(
        api.get("volumes/datasets/download", params={"path": "/raw"}), 409
    )

    assert "recursive" not in _error(
        api.delete("volumes/datasets/files", params={"path": "/nope"}), 404
    )
    assert (
        api.delete("volumes/datasets/files", params={"path": "/raw/train.bin"}).status_code == 204
    )
    assert (
        api.delete("volumes/datasets/files", params={"path": "/raw", "recursive": "1"}).status_code
        == 204
    )
    assert api.get("volumes/datasets/files").json()["entries"] == []
    assert api.delete("volumes/datasets").status_code == 204
    assert api.get("volumes").json()["volumes"] == []
    assert "volume create" in _error(api.get("volumes/datasets/files"), 404)


@pytest.mark.parametrize("path", ["..", "../outside.txt", "a/../../outside.txt", "~/x", "/../x"])
def test_paths_never_leave_the_volume(api: httpx.Client, jupyter: Jupyter, path: str) -> None:
    outside = jupyter.home / "volumes" / "outside.txt"
    outside.write_text("not in the volume")
    api.post("volumes", json={"name": "box"})
    try:
        for method, endpoint in [
            ("GET", "files"), ("PUT", "files"), ("DELETE", "files"), ("GET", "download"),
        ]:  # fmt: skip
            resp = api.request(method, f"volumes/box/{endpoint}", params={"path": path},
                               content=b"escaped")  # fmt: skip
            _error(resp, 400)
        assert outside.read_text() == "not in the volume"
        assert not (jupyter.home / "x").exists()
    finally:
        api.delete("volumes/box")


def test_an_absolute_path_is_the_volumes_own(api: httpx.Client, jupyter: Jupyter) -> None:
    api.post("volumes", json={"name": "abs"})
    try:
        assert "does not exist in volume" in _error(
            api.get("volumes/abs/download", params={"path": "/etc/hostname"}), 404
        )
        put = api.put("volumes/abs/files", params={"path": "/etc/mine"}, content=b"here")
        assert put.status_code == 201
        assert (jupyter.home / "volumes" / "abs" / "etc" / "mine").read_bytes() == b"here"
        assert "invalid volume name" in _error(api.get("volumes/..%2F..%2Fetc/files"), 400)
    finally:
        api.delete("volumes/abs", params={"recursive": "1"})


def test_secrets_show_their_keys_and_never_a_value(api: httpx.Client, jupyter: Jupyter) -> None:
    answers: list[str] = []

    def call(method: str, path: str, **kwargs: object) -> httpx.Response:
        resp = api.request(method, path, **kwargs)  # type: ignore[arg-type]
        answers.append(resp.text)
        return resp

    values = {"USER": SECRET_VALUES[0], "PASSWORD": SECRET_VALUES[1]}
    made = call("POST", "secrets", json={"name": "db", "values": values})
    assert made.status_code == 201, made.text
    assert made.json() == {"name": "db", "keys": ["PASSWORD", "USER"]}
    listed = call("GET", "secrets").json()
    assert listed["backend"] == "local"
    assert [(s["name"], s["keys"]) for s in listed["secrets"]] == [("db", ["PASSWORD", "USER"])]
    assert "update it instead" in _error(
        call("POST", "secrets", json={"name": "db", "values": values}), 409
    )
    # Bad input: each error names the key, never the value.
    bad_key = call("POST", "secrets", json={"name": "x", "values": {"1BAD": SECRET_VALUES[0]}})
    assert "not a valid environment variable name" in _error(bad_key, 400)
    bad_value = call("POST", "secrets", json={"name": "x", "values": {"K": [SECRET_VALUES[0]]}})
    assert "the value of K must be a str" in _error(bad_value, 400)
    not_json = call("POST", "secrets", content=SECRET_VALUES[0].encode())
    assert "not JSON" in _error(not_json, 400)
    assert "values" in _error(call("POST", "secrets", json={"name": "x"}), 400)

    updated = call("PUT", "secrets/db", json={"values": {"TOKEN": "t0k3n-value"},
                                              "remove": ["USER"]})  # fmt: skip
    assert updated.json() == {"name": "db", "keys": ["PASSWORD", "TOKEN"]}
    from jupyter_remote.state._secrets import LocalSecretStore

    store = LocalSecretStore(jupyter.home / "xdg-config" / "jupyter_remote" / "secrets.json")
    assert store.get("db") == {"PASSWORD": SECRET_VALUES[1], "TOKEN": "t0k3n-value"}
    assert "not found; create it" in _error(
        call("PUT", "secrets/nope", json={"values": {"A": "b"}}), 404
    )
    assert call("DELETE", "secrets/db").status_code == 204
    assert "not found" in _error(call("DELETE", "secrets/db"), 404)
    assert call("GET", "secrets").json()["secrets"] == []

    log = jupyter.log()
    for value in (*SECRET_VALUES, "t0k3n-value"):
        assert not [answer for answer in answers if value in answer]
        assert value not in log


def test_errors_are_json_with_what_to_do(api: httpx.Client) -> None:
    assert "must be a JSON object" in _error(api.post("volumes", content=b"[1, 2]"), 400)
    assert "name" in _error(api.post("volumes", json={}), 400)
    assert "invalid volume name" in _error(api.post("volumes", json={"name": "../x"}), 400)
    assert "jupyter-remote volume create" in _error(api.delete("volumes/missing"), 404)


def test_the_local_backend_says_where_work_runs(api: httpx.Client) -> None:
    status = api.get("backend").json()
    assert status["backend"] == "local"
    assert status["reachable"] is True
    assert status["address"].startswith("this machine")
    assert isinstance(status["gpus"], list)


def test_running_work_on_the_local_backend_is_not_listable_and_says_why(
    api: httpx.Client,
) -> None:
    running = api.get("running").json()
    assert running["listable"] is False
    assert running["jobs"] == []
    assert "child processes of the kernel" in running["message"]
    assert "needs the Nomad backend" in _error(api.get("running/jr-x-app-f/logs"), 400)
    assert "needs the Nomad backend" in _error(api.post("running/jr-x-app-f/stop"), 400)
    assert "stdout or stderr" in _error(api.get("running/j/logs", params={"type": "x"}), 400)


def test_an_unreachable_nomad_is_reported_not_raised(tmp_path: Path) -> None:
    env = {"JUPYTER_REMOTE_BACKEND": "nomad", "NOMAD_ADDR": f"http://127.0.0.1:{free_port()}"}
    with running_jupyter(tmp_path, env=env) as server, server.client() as api:
        status = api.get("backend").json()
        assert status["backend"] == "nomad"
        assert status["reachable"] is False
        assert env["NOMAD_ADDR"] in status["message"]
        message = _error(api.get("running"), 502)
        assert env["NOMAD_ADDR"] in message
        assert json.loads(api.get("running").text)["error"].startswith("Nomad")
