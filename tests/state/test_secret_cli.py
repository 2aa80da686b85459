"""``jupyter-remote secret create|list|delete`` through ``main()``: values are never printed."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from jupyter_remote.cli import _main
from jupyter_remote.cli._secret import add_parser
from jupyter_remote.state._secrets import LocalSecretStore

SENTINEL = "s3cr3t-VALUE-123"


class Terminal(io.StringIO):
    """Stdin that says it is a terminal, with the user's answers already typed."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalSecretStore:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("JUPYTER_REMOTE_CONFIG", raising=False)
    # Until `secret` is listed in _main._COMMANDS, add it the way _main would.
    if add_parser not in _main._COMMANDS:
        monkeypatch.setattr(_main, "_COMMANDS", (*_main._COMMANDS, add_parser))
    monkeypatch.setattr("sys.stdin", Pipe(""))
    return LocalSecretStore()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = _main.main(["secret", *args])
    out, err = capsys.readouterr()
    assert SENTINEL not in out and SENTINEL not in err
    return code, out, err


def test_round_trip(store: LocalSecretStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "create", "db", "USER=admin", f"PASSWORD={SENTINEL}")
    assert (code, out, err) == (0, "Created secret 'db' with keys: PASSWORD, USER\n", "")
    assert store.get("db") == {"USER": "admin", "PASSWORD": SENTINEL}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    assert cli(capsys, "create", "api", f"TOKEN={SENTINEL}")[0] == 0
    code, out, _ = cli(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "KEYS", "UPDATED"]
    assert [row.split()[:2] for row in rows] == [["api", "TOKEN"], ["db", "PASSWORD,"]]
    assert "PASSWORD, USER" in rows[1]

    assert cli(capsys, "delete", "db", "--yes") == (0, "Deleted secret 'db'\n", "")
    assert [info.name for info in store.list()] == ["api"]


def test_create_existing_needs_force(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.put("db", {"USER": SENTINEL}, overwrite=False)
    code, out, err = cli(capsys, "create", "db", "USER=other")
    assert (code, out) == (1, "")
    assert err == "Error: secret 'db' already exists; pass --force to replace it\n"
    assert store.get("db") == {"USER": SENTINEL}
    code, out, _ = cli(capsys, "create", "db", "--force", "HOST=h", "PORT=1")
    assert (code, out) == (0, "Replaced secret 'db' with keys: HOST, PORT\n")
    assert store.get("db") == {"HOST": "h", "PORT": "1"}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_create_from_dotenv_with_arguments_winning(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dotenv = tmp_path / "prod.env"
    dotenv.write_text(f"# prod\nexport TOKEN='{SENTINEL}'\nUSER=from-file\n")
    code, out, _ = cli(capsys, "create", "api", "--from-dotenv", str(dotenv), "USER=from-arg")
    assert (code, out) == (0, "Created secret 'api' with keys: TOKEN, USER\n")
    assert store.get("api") == {"TOKEN": SENTINEL, "USER": "from-arg"}


def test_create_reads_a_value_from_stdin(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Pipe(SENTINEL + "\n"))
    assert cli(capsys, "create", "db", "PASSWORD=-", "USER=u")[0] == 0
    assert store.get("db") == {"PASSWORD": SENTINEL, "USER": "u"}
    code, _, err = cli(capsys, "create", "db2", "A=-", "B=-")
    assert code == 2
    assert "only one key can read stdin (KEY=-): A and B do" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "USER=u", SENTINEL], "argument 2 after db is not KEY=VALUE"),
        (["db", f"BAD-KEY={SENTINEL}"], "secret 'db': 'BAD-KEY' is not a valid environment"),
        (["my db", "A=1"], "invalid secret name 'my db'"),
        (["db"], "give the secret's variables: KEY=VALUE ... and/or --from-dotenv FILE"),
        (["db", "--from-dotenv", "/nonexistent/.env"], "dotenv file not found: /nonexistent/.env"),
        (["db", "--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_create_usage_errors_exit_2_without_echoing_values(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "create", *args)
    assert (code, out) == (2, "")
    assert err.startswith("Error: ") and message in err
    assert store.list() == []


def test_list_when_empty(store: LocalSecretStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list")
    assert code == 0
    assert "No secrets. Create one with `jupyter-remote secret create NAME KEY=VALUE`." in out


def test_list_refuses_a_file_others_can_read(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.put("db", {"A": SENTINEL}, overwrite=False)
    store.path.chmod(0o644)
    code, out, err = cli(capsys, "list")
    assert (code, out) == (1, "")
    assert f"run `chmod 600 {store.path}`" in err


def test_delete_without_yes_on_a_pipe_refuses(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.put("db", {"A": SENTINEL}, overwrite=False)
    code, out, err = cli(capsys, "delete", "db")
    assert (code, out) == (2, "")
    assert "stdin is not a terminal to confirm on; pass --yes" in err
    assert store.get("db") == {"A": SENTINEL}


@pytest.mark.parametrize(
    ("answer", "deleted"), [("y\n", True), ("yes\n", True), ("n\n", False), ("", False)]
)
def test_delete_asks_on_a_terminal(
    store: LocalSecretStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    deleted: bool,
) -> None:
    store.put("db", {"A": SENTINEL}, overwrite=False)
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    code, _, err = cli(capsys, "delete", "db")
    assert "Delete secret 'db'? This cannot be undone. [y/N] " in err
    assert [info.name for info in store.list()] == ([] if deleted else ["db"])
    assert code == (0 if deleted else 1)
    assert ("Not deleted." in err) is not deleted


def test_delete_missing_secret(store: LocalSecretStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "delete", "nope", "--yes")
    assert code == 1
    assert "secret 'nope' not found; create it with `jupyter-remote secret create nope" in err


def test_secret_alone_shows_its_help(
    store: LocalSecretStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys)
    assert (code, out) == (2, "")
    assert "create" in err and "list" in err and "delete" in err
    assert "jupyter-remote secret create db USER=admin PASSWORD=-" in err
