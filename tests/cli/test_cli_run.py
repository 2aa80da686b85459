"""``jupyter-remote run``: the installed console script and ``main()``, with real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_remote
from jupyter_remote.cli import main

SCRIPTS = Path(__file__).parent / "scripts"
EXAMPLE = str(SCRIPTS / "example.py")
CONSOLE_SCRIPT = Path(sys.executable).parent / "jupyter-remote"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": "0"}
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def write(directory: Path, name: str, source: str) -> str:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return str(path)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- the installed console script ---------------------------------------------------------


def test_entrypoint_with_parameters_runs_remote_calls() -> None:
    proc = cli("run", EXAMPLE, "--n", "3", "--name", "x", "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello x: [0, 1, 4] verbose=True scale=1.0\n"
    assert "__main__ block" not in proc.stdout


def test_named_function_runs_on_a_worker_and_prints_its_result() -> None:
    proc = cli("run", "--backend", "local", f"{EXAMPLE}::square", "--x", "7")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "49\n", "")


def test_module_target(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(
        tmp_path,
        "pkg/jobs.py",
        """
        import jupyter_remote as jr
        app = jr.App("cli-module")

        @app.function()
        def double(x: int) -> int:
            return 2 * x
        """,
    )
    proc = cli("run", "pkg.jobs::double", "--x", "21", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "42\n"), proc.stderr


def test_version_and_help() -> None:
    proc = cli("--version")
    assert (proc.returncode, proc.stdout) == (0, f"jupyter-remote {jupyter_remote.__version__}\n")
    proc = cli("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout


# -- main() in this process ---------------------------------------------------------------


def test_flags_hyphens_underscores_and_float(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        capsys, "run", f"{EXAMPLE}::main", "--n=2", "--no-verbose", "--scale", "0.5"
    )
    assert (code, out, err) == (0, "hello world: [0, 1] verbose=False scale=0.5\n", "")


def test_script_is_pickled_by_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "run", f"{EXAMPLE}::script_imported_on_worker")
    assert (code, out) == (0, "False\n")


def test_entrypoint_help_lists_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "run", EXAMPLE, "--help")
    assert code == 0
    assert "Square 0..n-1 on workers" in out
    for option in ("--n INT", "--name STR", "--verbose, --no-verbose", "--scale FLOAT"):
        assert option in out


def test_missing_required_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "run", EXAMPLE, "--name", "x")
    assert (code, out) == (2, "")
    assert err.startswith("Error: the following arguments are required: --n")
    assert f"jupyter-remote run {EXAMPLE}::main --help" in err
    assert err.count("\n") == 1


def test_bad_parameter_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "run", EXAMPLE, "--n", "three")
    assert code == 2
    assert err.startswith("Error: argument --n: invalid int value: 'three'")


def test_unknown_target_lists_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "run", f"{EXAMPLE}::nope")
    assert code == 2
    assert err == (
        f"Error: {EXAMPLE} has no local entrypoint or function named 'nope'; it can run: "
        "main (local entrypoint), square (function), script_imported_on_worker (function)\n"
    )


def test_several_entrypoints_need_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(
        tmp_path,
        "two.py",
        """
        import jupyter_remote as jr
        app = jr.App("cli-two")

        @app.local_entrypoint()
        def first() -> None:
            print("first")

        @app.local_entrypoint(name="second")
        def other(word: str) -> None:
            print("second", word)
        """,
    )
    code, _, err = run_main(capsys, "run", script)
    assert code == 2
    assert "has 2 local entrypoints (first, second)" in err
    assert f"`jupyter-remote run {script}::first`" in err
    assert run_main(capsys, "run", f"{script}::second", "--word", "hi") == (0, "second hi\n", "")


def test_functions_without_entrypoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = """
        import jupyter_remote as jr
        app = jr.App("cli-functions")

        @app.function()
        def one() -> str:
            return "one ran"
        """
    single = write(tmp_path, "single.py", source)
    assert run_main(capsys, "run", single) == (0, "one ran\n", "")
    two = "\n@app.function()\ndef two() -> None: ...\n"
    several = write(tmp_path, "several.py", textwrap.dedent(source) + two)
    code, _, err = run_main(capsys, "run", several)
    assert code == 2
    assert "has no local entrypoint and 2 functions (one, two)" in err
    empty = write(tmp_path, "empty.py", "import jupyter_remote as jr\napp = jr.App('cli-empty')\n")
    code, _, err = run_main(capsys, "run", empty)
    assert code == 2
    assert "defines nothing to run" in err


def test_user_exceptions_print_a_traceback_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(
        tmp_path,
        "fails.py",
        """
        import jupyter_remote as jr
        app = jr.App("cli-fails")

        @app.function()
        def boom(message: str) -> None:
            raise ValueError(message)

        @app.local_entrypoint()
        def main(remote: bool = False) -> None:
            if remote:
                boom.remote("remote says no")
            raise RuntimeError("local says no")
        """,
    )
    code, _, err = run_main(capsys, "run", script)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):\n")
    assert "jupyter_remote/cli" not in err  # the CLI's own frames are left out
    assert err.endswith("RuntimeError: local says no\n")
    code, _, err = run_main(capsys, "run", script, "--remote")
    assert code == 1
    assert "Remote traceback:" in err
    assert err.endswith("ValueError: remote says no\n")


def test_import_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path, "broken.py", "x = 1 / 0\n")
    code, _, err = run_main(capsys, "run", broken)
    assert code == 1
    assert err.startswith(f"Error: importing {broken} failed:\nTraceback")
    assert err.endswith("ZeroDivisionError: division by zero\n")
    bad_option = write(
        tmp_path,
        "bad_option.py",
        """
        import jupyter_remote as jr
        app = jr.App("cli-bad-option")

        @app.function(memory="lots")
        def f() -> None: ...
        """,
    )
    code, _, err = run_main(capsys, "run", bad_option)
    assert code == 1
    assert err.startswith(f"Error: importing {bad_option} failed: Bad memory value 'lots'")
    assert err.count("\n") == 1
    code, _, err = run_main(capsys, "run", str(tmp_path / "missing.py"))
    assert code == 2
    assert err.startswith("Error: no such file:")
    code, _, err = run_main(capsys, "run", "no_such_module_here::f")
    assert code == 2
    assert err.startswith("Error: no module named 'no_such_module_here'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--backend", "nowhere", EXAMPLE], "Error: unknown backend 'nowhere'; choose one"),
        (["run", f"{EXAMPLE}::"], "ends with '::'"),
        (["run"], "Error: the following arguments are required: TARGET"),
        (["nosuchcommand"], "Error: argument COMMAND: invalid choice: 'nosuchcommand'"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys)
    assert code == 2
    assert "usage: jupyter-remote" in err


def test_parameter_the_command_line_cannot_express(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(
        tmp_path,
        "typed.py",
        """
        import jupyter_remote as jr
        app = jr.App("cli-typed")

        @app.local_entrypoint()
        def main(sizes: list[int], tag: "str | None" = None, extra: dict = {}) -> None:
            print(sizes, tag)
        """,
    )
    code, _, err = run_main(capsys, "run", script)
    assert code == 2
    assert "parameter 'sizes'" in err
    assert "annotate it as int, float, str or bool" in err


def test_exit_code_from_sys_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write(
        tmp_path,
        "exits.py",
        """
        import sys
        import jupyter_remote as jr
        app = jr.App("cli-exits")

        @app.local_entrypoint()
        def main(code: int) -> None:
            sys.exit(code)
        """,
    )
    assert run_main(capsys, "run", script, "--code", "3")[0] == 3
