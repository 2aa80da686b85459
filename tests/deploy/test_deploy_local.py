"""Deploy and look up on the local backend, through real processes and a real app server.

Every client here is a process of its own (the deploying CLI exits before the
callers start), so what is tested is what outlives the caller.
"""

from __future__ import annotations

import os
import signal
import stat

import pytest
from helpers import Env, alive

SHOP = """
    import jupyter_remote as jr

    app = jr.App("shop")

    @app.function()
    def square(x):
        print("squaring", x)
        return x * x

    @app.function()
    def count(n):
        yield from range(n)

    @app.cls()
    class Model:
        @jr.enter()
        def load(self):
            self.offset = 100

        @jr.method()
        def predict(self, x):
            return x + self.offset
"""


def test_deploy_then_call_from_other_processes(env: Env) -> None:
    env.write("shop.py", SHOP)
    out = env.cli("deploy", "shop.py").stdout
    assert "Deployed app 'shop' version 1: count, square, Model (class)" in out
    calls = env.python(
        """
        import asyncio
        import jupyter_remote as jr
        square = jr.Function.from_name("shop", "square")
        print(square.remote(7), list(square.map([1, 2, 3])))
        print(list(jr.Function.from_name("shop", "count").remote_gen(3)))
        print(jr.Cls.from_name("shop", "Model")().predict.remote(1))
        print(asyncio.run(square.remote.aio(5)))
        print(jr.App.lookup("shop").name)
        """
    ).stdout.split("\n")
    assert calls[:5] == ["49 [1, 4, 9]", "[0, 1, 2]", "101", "25", "shop"]
    assert "[square] squaring 7" in env.app_log("shop")
    assert "[square] squaring 7" in env.cli("app", "logs", "shop").stdout
    listing = env.cli("app", "list").stdout
    assert listing.startswith("shop\tv1\t") and "count, square, Model (class)" in listing


def test_wrong_names_list_what_is_deployed(env: Env) -> None:
    env.write("shop.py", SHOP)
    env.cli("deploy", "shop.py")
    proc = env.python(
        """
        import jupyter_remote as jr
        for lookup in (
            lambda: jr.Function.from_name("shop", "sqaure"),
            lambda: jr.Cls.from_name("shop", "square"),
            lambda: jr.Function.from_name("shpo", "square"),
            lambda: jr.App.lookup("nothing"),
        ):
            try:
                lookup()
            except jr.NotFoundError as exc:
                print(exc)
        print(jr.App.lookup("nothing", create_if_missing=True).name)
        """
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "app 'shop' has no function 'sqaure'; its functions: count, square"
    assert lines[1] == "app 'shop' has no class 'square'; its classes: Model"
    assert lines[2].startswith("no app 'shpo' is deployed (deployed apps: shop)")
    assert lines[3].startswith("no app 'nothing' is deployed")
    assert lines[4] == "nothing"


def test_state_and_store_are_private(env: Env) -> None:
    env.write("shop.py", SHOP)
    env.cli("deploy", "shop.py")
    assert stat.S_IMODE(os.stat(env.state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(env.state / "server.json").st_mode) == 0o600
    deployment = env.store / "apps" / "shop" / "deployment.pkl"
    assert stat.S_IMODE(os.stat(deployment).st_mode) == 0o600  # it holds secret values
    assert stat.S_IMODE(os.stat(deployment.parent).st_mode) == 0o700


def test_redeploy_while_a_call_runs(env: Env) -> None:
    version = """
        import time
        import jupyter_remote as jr

        app = jr.App("svc")

        @app.function()
        def work():
            print("started {v}")
            time.sleep(4)
            return "{v}"
    """
    env.write("svc.py", version.format(v="v1"))
    env.cli("deploy", "svc.py")
    call = 'import jupyter_remote as jr; print(jr.Function.from_name("svc", "work").remote())'
    first = env.popen(call)
    env.wait_for("the v1 call to start", lambda: "started v1" in env.app_log("svc"))
    env.write("svc.py", version.format(v="v2"))
    assert "version 2" in env.cli("deploy", "svc.py").stdout
    second = env.python(call)
    out, err = first.communicate(timeout=60)
    assert (out.strip(), first.returncode) == ("v1", 0), err  # finished on its old definition
    assert second.stdout.strip() == "v2"
    history = env.cli("app", "history", "svc").stdout.splitlines()
    assert [line.split("\t")[1] for line in history] == ["deployed v1", "deployed v2"]


def test_a_definition_that_cannot_be_pickled_deploys_nothing(env: Env) -> None:
    env.write(
        "bad.py",
        """
        import threading
        import jupyter_remote as jr

        app = jr.App("bad")
        lock = threading.Lock()

        @app.function()
        def fine():
            return 1

        @app.function()
        def locked():
            with lock:
                return 2
        """,
    )
    proc = env.cli("deploy", "bad.py", check=False)
    assert proc.returncode != 0
    assert "locked cannot be sent to a worker: it refers to 'lock'" in proc.stderr
    assert not (env.store / "apps" / "bad" / "deployment.pkl").exists()
    assert "No app is deployed" in env.cli("app", "list").stdout


def test_kill_9_then_the_next_client_resumes_every_deployment(env: Env) -> None:
    env.write("shop.py", SHOP)
    env.cli("deploy", "shop.py")
    env.write("other.py", SHOP.replace('"shop"', '"other"'))
    env.cli("deploy", "other.py")
    state = env.server_state()
    assert state is not None
    os.kill(int(state["pid"]), signal.SIGKILL)
    env.wait_for("the app server to die", lambda: not alive(int(state["pid"])))
    status = env.cli("server", "status", check=False)
    assert status.returncode == 3 and "jupyter-remote server start" in status.stdout
    out = env.python(
        """
        import jupyter_remote as jr
        print(jr.Function.from_name("shop", "square").remote(3))
        print(jr.Cls.from_name("other", "Model")().predict.remote(3))
        """
    ).stdout.split()
    assert out == ["9", "103"]
    restarted = env.server_state()
    assert restarted is not None and restarted["pid"] != state["pid"]
    assert "Deployed apps: other, shop." in env.cli("server", "status").stdout


def test_server_stop_then_start_keeps_deployments(env: Env) -> None:
    env.write("shop.py", SHOP)
    env.cli("deploy", "shop.py")
    assert "Stopped the app server" in env.cli("server", "stop").stdout
    assert env.server_state() is None
    assert "The app server runs" in env.cli("server", "start").stdout
    assert "Deployed apps: shop." in env.cli("server", "status").stdout
    env.cli("app", "stop", "shop")
    proc = env.python(
        """
        import jupyter_remote as jr
        try:
            jr.Function.from_name("shop", "square")
        except jr.NotFoundError as exc:
            print(exc)
        """
    )
    assert proc.stdout.startswith("no app 'shop' is deployed (deployed apps: none)")


@pytest.mark.parametrize("name", ["client:x", "../up", ""])
def test_bad_app_names_are_refused(env: Env, name: str) -> None:
    env.write("shop.py", SHOP)
    proc = env.cli("deploy", "shop.py", "--name", name, check=False)
    assert proc.returncode != 0 and "is not a valid app name" in proc.stderr


def test_spawn_in_one_process_get_in_another(env: Env) -> None:
    env.write(
        "jobs.py",
        """
        import time
        import jupyter_remote as jr

        app = jr.App("jobs")

        @app.function()
        def slow(x):
            time.sleep(3)
            if x < 0:
                raise ValueError(f"negative: {x}")
            return x * 10
        """,
    )
    env.cli("deploy", "jobs.py")
    ids = env.python(
        """
        import jupyter_remote as jr
        slow = jr.Function.from_name("jobs", "slow")
        print(slow.spawn(4).object_id, slow.spawn(-1).object_id)
        """
    ).stdout.split()  # this process exits before the calls finish
    assert len(ids) == 2 and all(i.startswith("fc-") for i in ids)
    out = env.python(
        f"""
        import jupyter_remote as jr
        call = jr.FunctionCall.from_id({ids[0]!r})
        try:
            call.get(timeout=0.1)
        except jr.OutputExpiredError as exc:
            print("expired:", "has not finished after 0.1s" in str(exc))
        print(call.get(timeout=60))
        try:
            jr.FunctionCall.from_id({ids[1]!r}).get()
        except ValueError as exc:
            print("raised:", exc)
        try:
            jr.FunctionCall.from_id("fc-nope").get()
        except jr.NotFoundError as exc:
            print("unknown:", "no spawned call 'fc-nope'" in str(exc))
        """
    ).stdout.splitlines()
    assert out == ["expired: True", "40", "raised: negative: -1", "unknown: True"]
