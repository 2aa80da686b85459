"""``jupyter-remote run`` with Modal's verbs (-q, -m, -d) and a Modal-style script, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"
MODAL_STYLE = str(SCRIPTS / "modal_style.py")
CONSOLE_SCRIPT = Path(sys.executable).parent / "jupyter-remote"


def cli(
    *args: str, cwd: Path | None = None, progress: str = "0"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JUPYTER_REMOTE_PROGRESS": progress}
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=90
    )


def test_a_modal_style_script_runs(tmp_path: Path) -> None:
    env_dir = {"JUPYTER_REMOTE_VOLUMES_URL": str(tmp_path / "volumes")}
    os.environ.update(env_dir)
    try:
        proc = cli("run", MODAL_STYLE, "--n", "4")
    finally:
        for key in env_dir:
            os.environ.pop(key)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "missing volume: NotFoundError\nsquares 14\nlocal=False task=True caller local: True\n"
    )
    # enable_output() shows the map's progress although the progress setting is off.
    assert "square.map [" in proc.stderr and "4/4" in proc.stderr


def test_quiet_hides_progress(tmp_path: Path) -> None:
    script = tmp_path / "mapper.py"
    script.write_text(
        textwrap.dedent(
            """
            import jupyter_remote as jr
            app = jr.App("quiet")

            @app.function()
            def inc(x: int) -> int:
                return x + 1

            @app.local_entrypoint()
            def main() -> None:
                print(sum(inc.map(range(3))))
            """
        )
    )
    loud = cli("run", str(script), progress="1")
    assert (loud.returncode, loud.stdout) == (0, "6\n"), loud.stderr
    assert "inc.map [" in loud.stderr
    quiet = cli("run", "-q", str(script), progress="1")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "6\n", "")
    assert cli("run", "--quiet", str(script), progress="1").stderr == ""


def test_dash_m_runs_a_module_even_where_a_file_of_that_name_exists(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "jobs.py").write_text(
        textwrap.dedent(
            """
            import jupyter_remote as jr
            app = jr.App("cli-dash-m")

            @app.function()
            def double(x: int) -> int:
                return 2 * x
            """
        )
    )
    (tmp_path / "pkg.jobs").write_text("not python")  # a file named like the module
    proc = cli("run", "-m", "pkg.jobs::double", "--x", "21", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "42\n"), proc.stderr
    bad = cli("run", "-m", "pkg/jobs.py", cwd=tmp_path)
    assert bad.returncode == 2
    assert "-m takes a module name like pkg.mod" in bad.stderr


def test_detach_says_to_deploy() -> None:
    proc = cli("run", "--detach", MODAL_STYLE)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: --detach is not supported yet")
    assert "jupyter-remote deploy" in proc.stderr
    assert cli("run", "-d", MODAL_STYLE).stderr == proc.stderr
