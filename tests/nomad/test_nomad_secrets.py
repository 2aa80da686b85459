"""Secrets as Nomad Variables, through the store and ``jupyter-remote secret --backend nomad``.

Values must never show: not in the CLI's output, not in errors, not in the
Variables' metadata listing; they are only in the Variable itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent import DevAgent

from jupyter_remote.backends.nomad._client import NomadClient, NomadPermissionError
from jupyter_remote.backends.nomad._config import NomadConfig
from jupyter_remote.cli import _main
from jupyter_remote.cli._secret import add_parser
from jupyter_remote.exceptions import ConfigError
from jupyter_remote.state import LocalSecretStore, secret_store
from jupyter_remote.state._nomad_secrets import NomadSecretStore, secret_variable_path

pytestmark = pytest.mark.nomad

SENTINEL = "s3cr3t-VALUE-123"
POLICY = Path(__file__).parents[2] / "nomad_jobs" / "acl-policy.hcl"

Cli = Callable[..., tuple[int, str, str]]


class Pipe:
    """Stdin that is not a terminal and has nothing to read."""

    def isatty(self) -> bool:
        return False

    def read(self) -> str:
        return ""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("NOMAD_", "JUPYTER_REMOTE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if add_parser not in _main._COMMANDS:
        monkeypatch.setattr(_main, "_COMMANDS", (*_main._COMMANDS, add_parser))
    monkeypatch.setattr("sys.stdin", Pipe())


@pytest.fixture
def nomad(nomad_agent: DevAgent, env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("NOMAD_ADDR", nomad_agent.address)
    with NomadClient(NomadConfig.load()) as client:
        yield client


@pytest.fixture
def name(nomad: NomadClient) -> Iterator[str]:
    """A secret name no other test uses; its Variable is deleted afterwards."""
    ident = f"db-{uuid.uuid4().hex[:8]}"
    yield ident
    nomad.delete_variable(secret_variable_path(ident))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        code = _main.main(["secret", *args])
        out, err = capsys.readouterr()
        assert SENTINEL not in out and SENTINEL not in err
        return code, out, err

    return run


def test_round_trip_through_the_cli(nomad: NomadClient, name: str, cli: Cli) -> None:
    code, out, err = cli("--backend", "nomad", "create", name, "USER=admin", f"PW={SENTINEL}")
    assert (code, out, err) == (0, f"Created secret {name!r} with keys: PW, USER\n", "")
    variable = nomad.get_variable(f"jupyter_remote/secrets/{name}")
    assert variable is not None and variable["Items"] == {"USER": "admin", "PW": SENTINEL}
    listing = nomad.list_variables("jupyter_remote/secrets/")
    assert f"jupyter_remote/secrets/{name}" in [v["Path"] for v in listing]
    assert SENTINEL not in json.dumps(listing)

    # The option works after the subcommand too.
    code, out, _ = cli("list", "--backend", "nomad")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "KEYS", "UPDATED"]
    row = next(row for row in rows if row.startswith(name))
    assert row.split()[:3] == [name, "PW,", "USER"]

    code, out, err = cli("--backend", "nomad", "create", name, "USER=x")
    assert (code, out) == (1, "")
    assert err == f"Error: secret {name!r} already exists; pass --force to replace it\n"
    assert cli("--backend", "nomad", "create", name, "--force", f"TOKEN={SENTINEL}")[0] == 0
    assert NomadSecretStore(nomad).get(name) == {"TOKEN": SENTINEL}

    assert cli("--backend", "nomad", "delete", name, "--yes") == (
        0, f"Deleted secret {name!r}\n", ""
    )  # fmt: skip
    assert nomad.get_variable(f"jupyter_remote/secrets/{name}") is None
    code, out, err = cli("--backend", "nomad", "delete", name, "--yes")
    assert (code, out) == (1, "")
    assert err.startswith(f"Error: secret {name!r} not found; create it with `jupyter-remote")
    # The local store was never touched.
    assert LocalSecretStore().list() == []


def test_the_configured_backend_is_used(
    nomad: NomadClient, name: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_BACKEND", "nomad")
    assert cli("create", name, f"PW={SENTINEL}")[0] == 0
    assert nomad.get_variable(secret_variable_path(name)) is not None
    assert name in cli("list")[1]
    # --backend wins over the setting.
    assert cli("--backend", "local", "list")[1].startswith("No secrets.")
    code, _, err = cli("--backend", "nomda", "list")
    assert code == 2 and err.startswith("Error: unknown backend 'nomda'; choose one of local, ")


def test_store(nomad: NomadClient, name: str) -> None:
    store = secret_store("nomad")
    assert isinstance(store, NomadSecretStore)
    assert isinstance(secret_store("local"), LocalSecretStore)
    with pytest.raises(ConfigError, match=f"secret '{name}' not found"):
        store.get(name)
    store.put(name, {"A": SENTINEL, "B": "2"}, overwrite=False)
    assert store.get(name) == {"A": SENTINEL, "B": "2"}
    [info] = [info for info in store.list() if info.name == name]
    assert info.keys == ("A", "B")
    variable = nomad.get_variable(secret_variable_path(name))
    assert variable is not None
    assert info.updated_at.timestamp() == pytest.approx(variable["ModifyTime"] / 1e9)

    # Nomad answers a create-only write that collides with the Variable, values and all.
    with pytest.raises(ConfigError) as caught:
        store.put(name, {"A": "other"}, overwrite=False)
    assert str(caught.value) == f"secret {name!r} already exists; pass overwrite=True to replace it"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    store.put(name, {"C": "3"}, overwrite=True)
    assert store.get(name) == {"C": "3"}

    with pytest.raises(ConfigError, match=r"invalid secret name 'a.b'"):
        store.put("a.b", {"A": "1"}, overwrite=False)
    with pytest.raises(ConfigError, match="needs at least one key"):
        store.put(name, {}, overwrite=True)
    store.delete(name)
    with pytest.raises(ConfigError, match=f"secret '{name}' not found"):
        store.delete(name)
    assert name not in [info.name for info in store.list()]


def test_variables_that_are_not_secrets_are_not_listed(nomad: NomadClient) -> None:
    nested = f"jupyter_remote/secrets/x-{uuid.uuid4().hex[:8]}/nested"
    nomad.put_variable(nested, {"A": SENTINEL})
    try:
        assert nested not in [info.name for info in NomadSecretStore(nomad).list()]
    finally:
        nomad.delete_variable(nested)


# -- ACLs ---------------------------------------------------------------------------------


def token_with(agent: DevAgent, rules: str) -> str:
    policy = f"p-{uuid.uuid4().hex[:8]}"
    agent.request("PUT", f"/v1/acl/policy/{policy}", {"Name": policy, "Rules": rules})
    token = agent.request("PUT", "/v1/acl/token", {"Type": "client", "Policies": [policy]})
    return str(token["SecretID"])


@contextlib.contextmanager
def client_with(agent: DevAgent, token: str | None) -> Iterator[NomadClient]:
    with NomadClient(NomadConfig(address=agent.address, token=token)) as client:
        yield client


def test_the_shipped_acl_policy_is_enough(
    nomad_acl_agent: DevAgent, env: None, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_acl_agent.address)
    monkeypatch.setenv("NOMAD_TOKEN", token_with(nomad_acl_agent, POLICY.read_text()))
    name = f"db-{uuid.uuid4().hex[:8]}"
    assert cli("--backend", "nomad", "list")[0] == 0
    assert cli("--backend", "nomad", "create", name, f"PW={SENTINEL}")[0] == 0
    assert name in cli("--backend", "nomad", "list")[1]
    assert cli("--backend", "nomad", "delete", name, "--yes")[0] == 0


def test_a_403_names_the_missing_capability(
    nomad_acl_agent: DevAgent, env: None, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs_only = 'namespace "default" { policy = "read" }'
    with client_with(nomad_acl_agent, token_with(nomad_acl_agent, jobs_only)) as client:
        store = NomadSecretStore(client)
        with pytest.raises(NomadPermissionError) as caught:
            store.put("db", {"PW": SENTINEL}, overwrite=False)
        message = str(caught.value)
        assert message.startswith("Nomad refused to write secret 'db': Permission denied")
        assert 'lacks the variables capability "write" on path "jupyter_remote/secrets/*"' in (
            message
        )
        assert SENTINEL not in message
        # Nomad filters a listing down to what the token may see, without a 403.
        with pytest.raises(NomadPermissionError, match='capability "list"'):
            store.list()

    anonymous = client_with(nomad_acl_agent, None)
    with anonymous as client, pytest.raises(NomadPermissionError, match="NOMAD_TOKEN is not"):
        NomadSecretStore(client).get("db")

    monkeypatch.setenv("NOMAD_ADDR", nomad_acl_agent.address)
    code, out, err = cli("--backend", "nomad", "list")
    assert (code, out) == (1, "")
    assert err.startswith("Error: Nomad refused to list secrets: Permission denied (HTTP 403).")
    assert err.count("\n") == 1
