"""A deployed class with ``jr.parameter()`` fields, called by its parameters from other processes.

The app server makes one definition (and pool) per set of parameters from the
class pickled at deploy time; it never imports the app's module.
"""

from __future__ import annotations

from helpers import Env

ZOO = """
    import os
    import jupyter_remote as jr

    app = jr.App("zoo")

    @app.cls()
    class Model:
        size: str = jr.parameter(default="small")
        seed: int = jr.parameter(default=0)

        @jr.enter()
        def load(self):
            self.loaded = f"{self.size}:{self.seed}"

        @jr.method()
        def describe(self):
            return self.loaded, os.getpid()

    @app.cls()
    class Named:
        name: str = jr.parameter()

        @jr.method()
        def hello(self):
            return "hello " + self.name

    @app.cls()
    class Plain:
        @jr.method()
        def ping(self):
            return "pong"
"""


def test_deployed_class_by_its_parameters(env: Env) -> None:
    env.write("zoo.py", ZOO)
    env.cli("deploy", "zoo.py")
    out = env.python(
        """
        import jupyter_remote as jr
        Model = jr.Cls.from_name("zoo", "Model")
        default, pid = Model().describe.remote()
        large, large_pid = Model(size="large", seed=3).describe.remote()
        print(default, large, pid != large_pid)
        print(Model(size="small", seed=0).describe.remote() == (default, pid))
        print(jr.Cls.from_name("zoo", "Named")(name="ada").hello.remote())
        named, plain = jr.Cls.from_name("zoo", "Named"), jr.Cls.from_name("zoo", "Plain")
        for bad in (
            lambda: Model(size=3).describe.remote(),
            lambda: Model(sise="x").describe.remote(),
            lambda: Model("x").describe.remote(),
            lambda: named().hello.remote(),
            lambda: plain(1).ping.remote(),
        ):
            try:
                bad()
            except (TypeError, jr.ConfigError) as exc:
                print(type(exc).__name__, exc)
        print(jr.Cls.from_name("zoo", "Plain")().ping.remote())
        """
    ).stdout.splitlines()
    assert out[:3] == ["small:0 large:3 True", "True", "hello ada"]
    assert "takes a str, not int" in out[3]
    assert "unknown parameter 'sise' (did you mean 'size'?)" in out[4]
    assert "keyword only" in out[5]
    assert "missing the parameter 'name'" in out[6]
    assert "no jr.parameter() fields" in out[7]
    assert out[8] == "pong"
