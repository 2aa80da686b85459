"""``%%remote`` through a real kernel: streaming, rich output, sync-back, sessions, errors."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_harness import Execution, Kernel

import jupyter_remote as jr
from jupyter_remote.state import secret_store


def usage_error(ex: Execution) -> bool:
    """IPython prints a UsageError on stderr (no traceback) and replies with status error."""
    return ex.status == "error" and ex.reply.get("ename") == "UsageError"


def test_output_streams_while_the_cell_runs(kernel: Kernel) -> None:
    ex = kernel.ok(
        "%%remote\nimport time\nprint('before', flush=True)\ntime.sleep(2)\nprint('after')"
    )
    assert ex.first_time("before") < ex.first_time("after") - 1.5
    assert "before\n" in ex.stdout and "after\n" in ex.stdout


def test_rich_display_and_out(kernel: Kernel) -> None:
    ex = kernel.ok(
        "%%remote\n"
        "from IPython.display import display, HTML, Markdown, clear_output\n"
        "display(HTML('<b>bold</b>'))\n"
        "h = display(Markdown('first'), display_id=True)\n"
        "h.update(Markdown('second'))\n"
        "{'answer': 42}"
    )
    displays = ex.of("display_data")
    assert displays[0]["data"]["text/html"] == "<b>bold</b>"
    assert displays[1]["data"]["text/markdown"] == "first"
    updates = ex.of("update_display_data")
    assert updates and updates[0]["data"]["text/markdown"] == "second"
    assert updates[0]["transient"]["display_id"] == displays[1]["transient"]["display_id"]
    (result,) = ex.of("execute_result")
    assert result["data"]["text/plain"] == "{'answer': 42}"
    cleared = kernel.ok(
        "%%remote\nprint('x')\nfrom IPython.display import clear_output\nclear_output()"
    )
    assert cleared.of("clear_output")


def test_unpicklable_last_value_shows_its_remote_repr(kernel: Kernel) -> None:
    ex = kernel.ok("%%remote\nimport threading\nthreading.Lock()")
    (result,) = ex.of("execute_result")
    assert "unlocked _thread.lock object" in result["data"]["text/plain"]


def test_assigned_names_come_back(kernel: Kernel) -> None:
    kernel.ok("%%remote\nx = 41\ny = x + 1\ndef double(v):\n    return 2 * v")
    ex = kernel.ok("print(x, y, double(y))")
    assert ex.stdout == "41 42 84\n"


def test_no_sync_and_out(kernel: Kernel) -> None:
    kernel.ok("a_ns = b_ns = None")
    kernel.ok("%%remote --no-sync\na_ns = 1\nb_ns = 2")
    assert kernel.ok("print(a_ns, b_ns)").stdout == "None None\n"
    kernel.ok("%%remote --out a_ns\na_ns = 1\nb_ns = 2")
    assert kernel.ok("print(a_ns, b_ns)").stdout == "1 None\n"


def test_globals_travel_with_the_cell(kernel: Kernel) -> None:
    kernel.ok(
        "import math as m\n"
        "def scale(v):\n    return v * factor\n"
        "factor = 3\n"
        "def make_adder(n):\n    return lambda v: v + n\n"
        "add5 = make_adder(5)\n"
        "total = 10"
    )
    ex = kernel.ok("%%remote\ntotal += 1\nprint(m.sqrt(16), scale(2), add5(1), total)")
    assert ex.stdout == "4.0 6 6 11\n"
    assert kernel.ok("print(total)").stdout == "11\n"


def test_line_magics_and_shell_lines_run_remotely(kernel: Kernel) -> None:
    ex = kernel.ok("%%remote\nimport os\n!echo shell-$PPID\n%time z = 1\nprint('pid', os.getpid())")
    assert "shell-" in ex.stdout and "Wall time" in ex.stdout
    local_pid = kernel.ok("import os; print(os.getpid())").stdout.strip()
    assert f"pid {local_pid}\n" not in ex.stdout


def test_unpicklable_global_is_named(kernel: Kernel) -> None:
    kernel.ok("import threading\nmy_lock = threading.Lock()")
    ex = kernel.execute("%%remote\nprint(my_lock)")
    assert usage_error(ex) and "'my_lock' (type _thread.lock) cannot be sent" in ex.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("gpus=1", "unknown key 'gpus'; valid keys: gpu, cpu, memory"),
        ("memory=lots", "memory"),
        ("gpu=Z100", "Z100"),
        ("--sessio x", "unknown flag --sessio"),
        ("cpu", "options are key=value"),
        ("timeout=soon", "timeout='soon': expected a number"),
    ],
)
def test_bad_arguments_are_usage_errors(kernel: Kernel, line: str, message: str) -> None:
    ex = kernel.execute(f"%%remote {line}\nprint(1)")
    assert usage_error(ex) and message in ex.stderr


def test_remote_error_points_at_the_cell_line(kernel: Kernel) -> None:
    ex = kernel.execute("%%remote\nbefore_error = 7\n\n1 / 0")
    assert ex.status == "error"
    (err,) = ex.of("error")
    assert err["ename"] == "ZeroDivisionError"
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err["traceback"]))
    assert f"Cell In[{ex.reply['execution_count']}], line 4" in text
    assert "----> 4 1 / 0" in text
    assert kernel.ok("print(before_error)").stdout == "7\n"  # synced despite the error


def test_sessions_keep_state_and_unpicklable_values(kernel: Kernel) -> None:
    first = kernel.ok(
        "%%remote --session s1\nimport threading, os\nheld = threading.Lock()\ncounter = 1\n"
        "session_pid = os.getpid()"
    )
    warnings = first.stderr
    assert "held (_thread.lock) stay in session 's1'" in warnings
    ex = kernel.ok(
        "%%remote --session s1\ncounter += 1\n"
        "print(type(held).__name__, os.getpid() == session_pid)"
    )
    assert ex.stdout == "lock True\n"
    assert kernel.ok("print(counter)").stdout == "2\n"
    listing = kernel.ok("%remote sessions").stdout
    assert "s1" in listing and "held" in listing
    changed = kernel.execute("%%remote --session s1 cpu=2\nprint(1)")
    assert usage_error(changed) and "close it first" in changed.stderr
    kernel.ok("%remote close s1")
    assert "(none)" in kernel.ok("%remote sessions").stdout


def test_interrupt_stops_the_remote_code_and_keeps_the_session(kernel: Kernel) -> None:
    kernel.ok("%%remote --session s2\nkept = 'still here'")
    start = time.monotonic()
    ex = kernel.execute(
        "%%remote --session s2\nimport time\nfor i in range(300):\n    print(i, flush=True)\n"
        "    time.sleep(0.1)",
        timeout=30,
        interrupt_after=2.0,
    )
    assert time.monotonic() - start < 8
    assert ex.status == "error"
    assert ex.of("error")[0]["ename"] == "KeyboardInterrupt"
    printed = ex.stdout.split()
    assert printed and len(printed) < 100
    ex2 = kernel.ok("%%remote --session s2\nprint(kept)")
    assert ex2.stdout == "still here\n"
    time.sleep(0.5)
    later = kernel.ok("print('usable')")
    assert later.stdout == "usable\n"  # nothing of the interrupted cell leaks in
    kernel.ok("%remote close s2")


def test_gpu_nobody_has_fails_fast(kernel: Kernel) -> None:
    start = time.monotonic()
    ex = kernel.execute("%%remote gpu=H100\nprint(1)", timeout=30)
    assert time.monotonic() - start < 15
    assert usage_error(ex) and "H100" in ex.stderr and "nomad" in ex.stderr.lower()


def test_status_and_config(kernel: Kernel) -> None:
    out = kernel.ok("%remote_config cpu=1\n%remote").stdout
    assert "backend: local" in out and "cpu=1" in out
    bad = kernel.execute("%remote_config memory=lots")
    assert usage_error(bad) and "lots" in bad.stderr
    kernel.ok("%remote_config cpu=1")


def test_cell_options_reach_the_worker(kernel: Kernel) -> None:
    ex = kernel.ok(
        "%%remote env=GREETING=hello cpu=1 memory=256Mi\nimport os\nprint(os.environ['GREETING'])"
    )
    assert ex.stdout == "hello\n"


@pytest.fixture
def stores(kernel: Kernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Secrets 'db' and 'api', volume 'datasets': stores of this test, here and in the kernel."""
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "JUPYTER_REMOTE_VOLUMES_URL": str(tmp_path / "volumes"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = secret_store("local")
    store.put("db", {"DB_PASSWORD": "pw-1"}, overwrite=False)
    store.put("api", {"API_TOKEN": "tok-2"}, overwrite=False)
    with jr.Volume.from_name("datasets", create_if_missing=True).batch_upload() as batch:
        batch.put_file(io.BytesIO(b"from the volume"), "/hello.txt")
    kernel.ok(f"import os\n_saved_env = {{k: os.environ.get(k) for k in {list(env)!r}}}")
    kernel.ok(f"os.environ.update({env!r})")
    yield tmp_path
    kernel.ok(
        "for k, v in _saved_env.items():\n"
        "    os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)"
    )


def test_secrets_and_volumes_by_name(kernel: Kernel, stores: Path) -> None:
    mount = stores / "mnt" / "data"
    ex = kernel.ok(
        f"%%remote secrets=db,api volumes={mount}:datasets\n"
        "import os\n"
        "print(os.environ['DB_PASSWORD'], os.environ['API_TOKEN'])\n"
        f"print(open('{mount}/hello.txt').read())"
    )
    assert ex.stdout == "pw-1 tok-2\nfrom the volume\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("secrets=", "secrets='': name the stored secrets, e.g. secrets=db,api"),
        ("secrets=db,,api", "secrets='db,,api': name the stored secrets"),
        ("secrets=no/slash", "no/slash"),
        ("secrets=nope", "'nope'"),  # looked up when the cell runs, and named
        ("volumes=/data", "volumes='/data': use volumes=/path:NAME[,/path:NAME]"),
        ("volumes=datasets:/data", "write the path first: volumes=/data:datasets"),
        ("volumes=data:datasets", "not absolute"),
        ("volumes=/data:missing", "volume 'missing' does not exist"),
        ("volumes=/data:bad/name", "invalid volume name 'bad/name'"),
    ],
)
def test_bad_secrets_and_volumes_are_usage_errors(
    kernel: Kernel, stores: Path, line: str, message: str
) -> None:
    ex = kernel.execute(f"%%remote {line}\nprint(1)")
    assert usage_error(ex), ex.of("error") or ex.reply
    assert message in ex.stderr


def test_background_output_lands_in_the_cell_that_started_it(kernel: Kernel) -> None:
    kernel.ok(
        "app = jr.App('spawned')\n"
        "import time\n"
        "@app.function()\n"
        "def late(x):\n"
        "    time.sleep(1.0)\n"
        "    print('late output', x)\n"
        "    return x"
    )
    started = kernel.ok("call = late.spawn(7)")
    later = kernel.ok("import time\ntime.sleep(3)\nprint('second cell')")
    assert "late output" not in later.stdout
    texts = [
        m["content"]["text"]
        for m in kernel.stray
        if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == started.msg_id
    ]
    assert "late output 7\n" in texts
    assert kernel.ok("print(call.get(timeout=10))").stdout == "7\n"


def test_plain_remote_call_output_goes_to_its_cell(kernel: Kernel) -> None:
    kernel.ok("import conformance_funcs as funcs\nsq = jr.App('plain').function()(funcs.square)")
    ex = kernel.ok("print(sq.remote(9))")
    assert ex.stdout == "squaring 9\n81\n"


def test_figures_and_tables(kernel: Kernel) -> None:
    ex = kernel.ok(
        "%%remote\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('remote plot')"
    )
    pngs = [d for d in ex.of("display_data") if "image/png" in d["data"]]
    assert len(pngs) == 1 and len(pngs[0]["data"]["image/png"]) > 1000
    table = kernel.ok("%%remote\nimport pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\ndf")
    (result,) = table.of("execute_result")
    assert "<table" in result["data"]["text/html"]
    assert kernel.ok("print(df.a.sum())").stdout == "3\n"


def test_a_dead_kernel_leaves_no_worker() -> None:
    """The kernel is SIGKILLed while a session and a cell run: its workers exit by themselves."""
    from conformance_suite import _alive
    from kernel_harness import start_kernel

    k = start_kernel()
    pid = int(k.ok("%%remote --session doomed\nimport os\nprint(os.getpid())").stdout)
    k.kc.execute("%%remote\nimport time\ntime.sleep(60)")
    time.sleep(1.5)
    process = k.km.provisioner.process
    process.kill()  # SIGKILL, no cleanup
    process.wait()
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(pid)
    k.kc.stop_channels()
    k.km.cleanup_resources()
    assert not alive
