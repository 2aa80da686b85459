"""Secrets: the local store's file (mode, atomicity, locking), ``.env`` parsing, ``Secret``."""

from __future__ import annotations

import json
import pickle
import re
import stat
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from jupyter_remote.api._secret import Secret
from jupyter_remote.exceptions import ConfigError
from jupyter_remote.state._secrets import (
    LocalSecretStore,
    SecretInfo,
    SecretStore,
    parse_dotenv,
    read_dotenv,
)

SENTINEL = "s3cr3t-VALUE-123"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("JUPYTER_REMOTE_CONFIG", raising=False)
    return tmp_path / "xdg" / "jupyter_remote"


@pytest.fixture
def store(config_home: Path) -> LocalSecretStore:
    return LocalSecretStore()


# -- the store ----------------------------------------------------------------------------


def test_store_round_trip(store: LocalSecretStore) -> None:
    store.put("db", {"USER": "admin", "PASSWORD": SENTINEL}, overwrite=False)
    store.put("api-v2", {"TOKEN": "t"}, overwrite=False)
    assert store.get("db") == {"USER": "admin", "PASSWORD": SENTINEL}
    infos = store.list()
    assert [(i.name, i.keys) for i in infos] == [
        ("api-v2", ("TOKEN",)),
        ("db", ("PASSWORD", "USER")),
    ]
    assert all(i.updated_at.tzinfo is not None for i in infos)
    assert SENTINEL not in repr(infos)
    store.delete("db")
    assert [i.name for i in store.list()] == ["api-v2"]


def test_store_is_a_secret_store(store: LocalSecretStore) -> None:
    def use(s: SecretStore) -> list[SecretInfo]:
        return s.list()

    assert use(store) == []


def test_file_lives_by_the_config_file_with_private_modes(
    store: LocalSecretStore, config_home: Path
) -> None:
    assert store.path == config_home / "secrets.json"
    assert not config_home.exists()
    store.put("db", {"A": "1"}, overwrite=False)
    assert mode(config_home) == 0o700
    assert mode(store.path) == 0o600
    assert mode(config_home / "secrets.json.lock") == 0o600
    store.put("db", {"A": "2"}, overwrite=True)
    assert mode(store.path) == 0o600
    store.put("other", {"B": "1"}, overwrite=False)
    store.delete("other")
    assert mode(store.path) == 0o600
    assert sorted(p.name for p in config_home.iterdir()) == ["secrets.json", "secrets.json.lock"]


def test_explicit_config_file_puts_secrets_next_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_REMOTE_CONFIG", str(tmp_path / "conf" / "jr.toml"))
    assert LocalSecretStore().path == tmp_path / "conf" / "secrets.json"


def test_existing_secret_needs_overwrite(store: LocalSecretStore) -> None:
    store.put("db", {"A": "1"}, overwrite=False)
    with pytest.raises(ConfigError, match="'db' already exists; pass overwrite=True"):
        store.put("db", {"A": "2"}, overwrite=False)
    store.put("db", {"B": "2"}, overwrite=True)
    assert store.get("db") == {"B": "2"}


def test_missing_secret_says_how_to_create_it(store: LocalSecretStore) -> None:
    with pytest.raises(ConfigError) as info:
        store.get("db")
    assert "secret 'db' not found" in str(info.value)
    assert "`jupyter-remote secret create db KEY=VALUE`" in str(info.value)
    with pytest.raises(ConfigError, match="secret 'db' not found"):
        store.delete("db")


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o620, 0o644])
def test_file_other_users_can_access_is_refused(store: LocalSecretStore, bad_mode: int) -> None:
    store.put("db", {"PASSWORD": SENTINEL}, overwrite=False)
    store.path.chmod(bad_mode)
    for attempt in (
        lambda: store.get("db"),
        store.list,
        lambda: store.put("x", {"A": "1"}, overwrite=False),
        lambda: store.delete("db"),
    ):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert f"run `chmod 600 {store.path}`" in str(info.value)
        assert SENTINEL not in str(info.value)
    store.path.chmod(0o600)
    assert store.get("db") == {"PASSWORD": SENTINEL}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"secrets": {"db": {"values": {"A": "' + SENTINEL, "bad JSON at line 1"),
        (json.dumps({"version": 99, "secrets": {}}), "format version 99"),
        (json.dumps([SENTINEL]), "expected an object"),
        (
            json.dumps({"version": 1, "secrets": {"db": {"values": {"A": 1}}}}),
            "secret 'db' is malformed",
        ),
        (b"\xff\xfe" + SENTINEL.encode(), "not UTF-8"),
    ],
)
def test_broken_file_is_named_without_its_contents(
    store: LocalSecretStore, content: str | bytes, message: str
) -> None:
    store.path.parent.mkdir(parents=True)
    data = content.encode() if isinstance(content, str) else content
    store.path.write_bytes(data)
    store.path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        store.list()
    assert message in str(info.value)
    assert str(store.path) in str(info.value)
    assert SENTINEL not in str(info.value)
    assert SENTINEL not in "".join(traceback.format_exception(info.value))
    # A JSONDecodeError holds the whole document: it must not ride along as the context.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_names_keys_and_values_are_validated(store: LocalSecretStore) -> None:
    with pytest.raises(ConfigError, match="invalid secret name 'my secret'"):
        store.put("my secret", {"A": "1"}, overwrite=False)
    with pytest.raises(ConfigError, match="invalid secret name"):
        store.put("x" * 65, {"A": "1"}, overwrite=False)
    with pytest.raises(ConfigError, match="invalid secret name '-db'"):
        store.get("-db")
    with pytest.raises(ConfigError, match="'1A' is not a valid environment variable name"):
        store.put("db", {"1A": SENTINEL}, overwrite=False)
    with pytest.raises(TypeError, match="the value of A must be a str, not int"):
        store.put("db", {"A": 123}, overwrite=False)  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="the value of A contains a NUL") as info:
        store.put("db", {"A": SENTINEL + "\0"}, overwrite=False)
    assert SENTINEL not in str(info.value)
    with pytest.raises(ConfigError, match="needs at least one key"):
        store.put("db", {}, overwrite=False)
    assert store.list() == []
    store.put("A-z_0-9", {"_x1": ""}, overwrite=False)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "secrets.json"
    code = textwrap.dedent(
        """
        import sys
        from jupyter_remote.state._secrets import LocalSecretStore
        store = LocalSecretStore(sys.argv[1])
        for i in range(10):
            store.put(f"w{sys.argv[2]}-{i}", {"K": f"{sys.argv[2]}-{i}"}, overwrite=False)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(n)], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    store = LocalSecretStore(path)
    names = {info.name for info in store.list()}
    assert names == {f"w{n}-{i}" for n in range(4) for i in range(10)}
    assert store.get("w3-7") == {"K": "3-7"}
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["version"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.json.lock"]


# -- .env files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=2\n", {"A": "1", "B": "2"}),
        ("# comment\n\n   \n  # indented comment\nA=1", {"A": "1"}),
        ("export A=1\nexport  B = two words \n", {"A": "1", "B": "two words"}),
        ("A = 1   # trailing comment\nB=a#b\nC=#x", {"A": "1", "B": "a#b", "C": "#x"}),
        ("A='single # not a comment'  # comment", {"A": "single # not a comment"}),
        ("A=\"double\"\nB='it\\'s'", {"A": "double", "B": "it's"}),
        ('A="line1\\nline2\\t\\"q\\" \\\\"', {"A": 'line1\nline2\t"q" \\'}),
        ("A='no\\nescape'", {"A": "no\\nescape"}),
        (
            'KEY="-----BEGIN-----\nabc\n-----END-----"\nB=2',
            {"KEY": "-----BEGIN-----\nabc\n-----END-----", "B": "2"},
        ),
        ("A=\nB=''\nC=\"\"", {"A": "", "B": "", "C": ""}),
        ("BARE\nexport ALSO_BARE\nA=1", {"A": "1"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("A=x=y", {"A": "x=y"}),
        ("A=1\nA=2", {"A": "2"}),
        (
            "HOST=db\nURL=pg://${HOST}:${PORT:-5432}/${FROM_ENV}",
            {"HOST": "db", "URL": "pg://db:5432/e"},
        ),
        ("A=1\nB=\"${A}\"\nC='${A}'", {"A": "1", "B": "1", "C": "${A}"}),
    ],
)
def test_parse_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, environ={"FROM_ENV": "e", "A": "from-env"}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"A=1\n{SENTINEL}\n", "prod.env, line 2: expected KEY=VALUE"),
        (f'A=1\nB="{SENTINEL}\nC=2', 'prod.env, line 2: the value of B has no closing "'),
        (
            f"A='{SENTINEL}' {SENTINEL}",
            "prod.env, line 1: unexpected text after the quoted value of A",
        ),
        (f"MY-KEY={SENTINEL}", "prod.env, line 1: 'MY-KEY' is not a valid environment variable"),
    ],
)
def test_parse_dotenv_errors_name_the_line_not_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dotenv(text, "prod.env")
    assert message in str(info.value)
    assert SENTINEL not in str(info.value)


def test_read_dotenv_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"dotenv file not found: {tmp_path / 'nope.env'}")
    ):
        read_dotenv(tmp_path / "nope.env")


# -- Secret -------------------------------------------------------------------------------


def test_secret_from_name_resolves_through_the_store(store: LocalSecretStore) -> None:
    store.put("db", {"USER": "admin", "PASSWORD": SENTINEL}, overwrite=False)
    secret = Secret.from_name("db", required_keys=["PASSWORD"])
    assert secret.name == "db"
    assert secret.keys() is None
    assert repr(secret) == "<Secret 'db' required_keys=['PASSWORD']>"
    assert secret.resolve(store) == {"USER": "admin", "PASSWORD": SENTINEL}
    assert secret.keys() == ["PASSWORD", "USER"]
    assert repr(secret) == str(secret) == "<Secret 'db' keys=['PASSWORD', 'USER']>"
    assert repr(Secret.from_name("db")) == "<Secret 'db'>"


def test_secret_from_name_missing_secret(store: LocalSecretStore) -> None:
    with pytest.raises(ConfigError) as info:
        Secret.from_name("nope").resolve(store)
    assert "'nope' not found" in str(info.value)
    assert "jupyter-remote secret create nope KEY=VALUE" in str(info.value)


def test_secret_from_name_missing_required_keys_names_them_not_values(
    store: LocalSecretStore,
) -> None:
    store.put("db", {"USER": SENTINEL}, overwrite=False)
    secret = Secret.from_name("db", required_keys=["PASSWORD", "USER", "HOST"])
    with pytest.raises(ConfigError) as info:
        secret.resolve(store)
    message = str(info.value)
    assert "secret 'db' is missing required key(s) PASSWORD, HOST (it has USER)" in message
    assert "secret create db HOST=... PASSWORD=... USER=... --force" in message
    assert SENTINEL not in message
    assert SENTINEL not in repr(secret)


def test_secret_from_name_validates_eagerly() -> None:
    with pytest.raises(ConfigError, match="invalid secret name 'a b'"):
        Secret.from_name("a b")
    with pytest.raises(ConfigError, match=r"Secret.from_name\('db'\): '2X' is not a valid"):
        Secret.from_name("db", required_keys=["2X"])
    with pytest.raises(TypeError, match="required_keys must be a list of names, not a str"):
        Secret.from_name("db", required_keys="PASSWORD")


def test_secret_from_dict(store: LocalSecretStore) -> None:
    secret = Secret.from_dict({"B": SENTINEL, "A": "1", "DROPPED": None})
    assert secret.keys() == ["A", "B"]
    assert secret.name is None
    assert repr(secret) == str(secret) == "<Secret from_dict keys=['A', 'B']>"
    assert secret.resolve(store) == {"A": "1", "B": SENTINEL}
    assert repr(Secret.from_dict()) == "<Secret from_dict keys=[]>"


def test_secret_from_dict_rejects_bad_keys_and_values_without_showing_them() -> None:
    with pytest.raises(TypeError, match="the value of PORT must be a str, not int") as info:
        Secret.from_dict({"PORT": 5432, "P": SENTINEL})  # type: ignore[dict-item]
    assert SENTINEL not in str(info.value)
    with pytest.raises(ConfigError, match="'BAD KEY' is not a valid environment variable"):
        Secret.from_dict({"BAD KEY": SENTINEL})
    with pytest.raises(TypeError, match="expected a dict, not list"):
        Secret.from_dict([("A", "1")])  # type: ignore[arg-type]


def test_secret_pickles_and_its_repr_stays_safe(store: LocalSecretStore) -> None:
    secret = pickle.loads(pickle.dumps(Secret.from_dict({"A": SENTINEL})))
    assert repr(secret) == "<Secret from_dict keys=['A']>"
    assert secret.resolve(store) == {"A": SENTINEL}
    named = pickle.loads(pickle.dumps(Secret.from_name("db", required_keys=["A"])))
    assert repr(named) == "<Secret 'db' required_keys=['A']>"


def test_secret_is_made_by_its_constructors() -> None:
    with pytest.raises(TypeError, match=r"Secret.from_name\(\), Secret.from_dict\(\)"):
        Secret()


def test_secret_from_dotenv_reads_the_file_when_resolved(
    tmp_path: Path, store: LocalSecretStore
) -> None:
    path = tmp_path / "prod.env"
    secret = Secret.from_dotenv(path)
    assert repr(secret) == f"<Secret from_dotenv {str(path)!r}>"
    assert secret.keys() is None
    path.write_text(f"export TOKEN='{SENTINEL}'\nUSER=me\n")
    assert secret.resolve(store) == {"TOKEN": SENTINEL, "USER": "me"}
    assert secret.keys() == ["TOKEN", "USER"]
    assert SENTINEL not in repr(secret)


def test_secret_from_dotenv_searches_the_directory_and_its_parents(
    tmp_path: Path, store: LocalSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("A=root\n")
    (tmp_path / "custom.env").write_text("A=custom\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    script = deep / "job.py"
    script.write_text("")
    monkeypatch.chdir(deep)
    assert Secret.from_dotenv().resolve(store) == {"A": "root"}
    assert Secret.from_dotenv(deep).resolve(store) == {"A": "root"}
    assert Secret.from_dotenv(script).resolve(store) == {"A": "root"}  # from_dotenv(__file__)
    assert Secret.from_dotenv(filename="custom.env").resolve(store) == {"A": "custom"}
    with pytest.raises(ConfigError, match="filename='a/b' must be a file name"):
        Secret.from_dotenv(filename="a/b")


def test_secret_from_dotenv_missing_file_names_the_path(
    tmp_path: Path, store: LocalSecretStore
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'missing.env'} does not exist")):
        Secret.from_dotenv(tmp_path / "missing.env").resolve(store)
    with pytest.raises(
        ConfigError, match=re.escape(f"no nope.env file in {tmp_path} or its parent")
    ):
        Secret.from_dotenv(tmp_path, filename="nope.env").resolve(store)


def test_secret_from_local_environ(
    store: LocalSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR_TEST_TOKEN", SENTINEL)
    monkeypatch.delenv("JR_TEST_MISSING", raising=False)
    secret = Secret.from_local_environ(["JR_TEST_TOKEN"])
    assert repr(secret) == "<Secret from_local_environ keys=['JR_TEST_TOKEN']>"
    assert secret.resolve(store) == {"JR_TEST_TOKEN": SENTINEL}
    # Read when resolved, not when made: a worker importing the module does not need the variable.
    later = Secret.from_local_environ(["JR_TEST_TOKEN", "JR_TEST_MISSING"])
    with pytest.raises(ConfigError) as info:
        later.resolve(store)
    assert "environment variable(s) JR_TEST_MISSING not set" in str(info.value)
    assert SENTINEL not in str(info.value)
    with pytest.raises(TypeError, match="env_keys must be a list of names, not a str"):
        Secret.from_local_environ("JR_TEST_TOKEN")
