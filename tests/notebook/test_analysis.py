"""Cell analysis: which notebook names a ``%%remote`` cell reads, assigns, deletes, imports."""

from __future__ import annotations

import doctest
import textwrap

import pytest

from jupyter_remote.notebook import _analysis
from jupyter_remote.notebook._analysis import CellNames, analyze_cell


def case(source: str, reads: str = "", assigns: str = "", deletes: str = "", *, id: str) -> object:
    """One cell and the names expected of it, written as space-separated words."""
    expected = tuple(frozenset(words.split()) for words in (reads, assigns, deletes))
    return pytest.param(textwrap.dedent(source).strip("\n"), *expected, id=id)


CASES = [
    # -- straight-line top level --------------------------------------------------------
    case("y = 1\nprint(y)", "", "y", id="bound-before-read"),
    case("print(y)\ny = 1", "y", "y", id="read-before-bound"),
    case("x = x + 1", "x", "x", id="self-referencing-assign"),
    case("total += step", "step total", "total", id="augmented-assign"),
    case("obj.count += 1\nitems[i] = v", "i items obj v", "", id="attribute-subscript-targets"),
    case("first, *rest = items\na, (b, c) = pair", "items pair", "a b c first rest", id="unpack"),
    case("[p, q] = r = load()", "load", "p q r", id="chained-targets"),
    case("msg = f'{name!r:>{width}} {n + 1}'", "n name width", "msg", id="f-string"),
    case("out = data[lo:hi, ::step]", "data hi lo step", "out", id="slices"),
    case("print(len(xs), sorted(ys))", "xs ys", "", id="builtins-not-read"),
    case("list = [1]\nlist.append(2)", "", "list", id="shadowed-builtin-bound-first"),
    case("if c:\n    list = []\nlist.append(1)", "c list", "list", id="shadowed-builtin-maybe"),
    case("sum = sum(values)", "sum values", "sum", id="builtin-read-then-shadowed"),
    case("global x\nprint(x)", "x", "", id="module-level-global"),
    # -- IPython names and transformed magics -------------------------------------------
    case("print(_ + __ + ___, _i, _ii, _iii, _i3, _5)", id="history-names"),
    case("print(In[1], Out[2], _oh, _ih, _dh, __name__, __file__, __builtins__)", id="ipy-names"),
    case("exit()\nquit()\nget_ipython()", id="ipython-callables"),
    case("print(_private, _x1, _i3x, __dunder)", "_i3x __dunder _private _x1", id="underscores"),
    case("_tmp = 1\n__ = 2", "", "_tmp __", id="underscore-assigns-kept"),
    case("get_ipython().run_line_magic('time', 'x = 1')", id="line-magic"),
    case("get_ipython().run_cell_magic('bash', '', 'echo hi\\n')", id="cell-magic"),
    case("get_ipython().system('ls')", id="shell-escape"),
    case("files = get_ipython().getoutput('ls')", "", "files", id="shell-capture"),
    # -- annotations ----------------------------------------------------------------------
    case("x: int = 1", "", "x", id="annotated-builtin"),
    case("x: MyType = make()", "MyType make", "x", id="annotated-assign"),
    case("x: MyType", "MyType", "", id="annotation-without-value"),
    case("obj.attr: Kind = 1", "Kind obj", "", id="annotated-attribute"),
    case("from __future__ import annotations\nx: MyType = 1", "", "x", id="lazy-annotations"),
    # -- branches and loops ---------------------------------------------------------------
    case("if c:\n    z = 1\nprint(z)", "c z", "z", id="if-maybe-bound"),
    case("if c:\n    v = 1\nelse:\n    v = 2\nprint(v)", "c", "v", id="if-else-both-bind"),
    case("if c:\n    v = 1\nelse:\n    raise ValueError\nprint(v)", "c", "v", id="else-raises"),
    case("if c:\n    v = 1\n    print(v)", "c", "v", id="bound-inside-branch"),
    case("for i in range(3):\n    acc = acc + i", "acc", "acc i", id="for-accumulate"),
    case("for x in xs:\n    y = x * 2\n    print(y)", "xs", "x y", id="for-body-in-order"),
    case("for i in items:\n    pass\nprint(i)", "i items", "i", id="for-target-maybe-bound"),
    case(
        "for i in r:\n    pass\nelse:\n    found = 0\nprint(found)",
        "found r",
        "found i",
        id="for-else",
    ),
    case("while n > 0:\n    n -= 1", "n", "n", id="while"),
    case("while go():\n    w = 1\nprint(w)", "go w", "w", id="while-maybe-bound"),
    case("async for item in stream():\n    last = item", "stream", "item last", id="async-for"),
    case("data = await fetch(url)", "fetch url", "data", id="top-level-await"),
    # -- with, try ------------------------------------------------------------------------
    case(
        "with open(path) as fh, lock:\n    text = fh.read()\nprint(text, fh)",
        "lock path",
        "fh text",
        id="with",
    ),
    case("async with session() as s:\n    r = await s.get(u)", "session u", "r s", id="async-with"),
    case(
        """
        try:
            import tomllib as toml
        except ImportError as err:
            toml = None
            print(err)
        finally:
            done = True
        print(toml, done, err)
        """,
        "err",
        "done toml",
        id="try-except-finally",
    ),
    case(
        "try:\n    v = compute()\nexcept KeyError:\n    raise RuntimeError('no')\nprint(v)",
        "compute",
        "v",
        id="handler-reraises",
    ),
    case(
        "try:\n    v = compute()\nexcept KeyError:\n    pass\nprint(v)",
        "compute v",
        "v",
        id="handler-swallows",
    ),
    case(
        "try:\n    a = 1\n    b = a\nexcept Oops:\n    b = a", "Oops a", "a b", id="handler-entry"
    ),
    case(
        "try:\n    t = 1\nfinally:\n    done = t\nprint(t, done)", "t", "done t", id="try-finally"
    ),
    case("try:\n    pass\nexcept* ValueError as group:\n    g = group", "", "g", id="try-star"),
    case(
        "e = 1\ntry:\n    pass\nexcept E as e:\n    pass\nprint(e)",
        "E e",
        "e",
        id="except-as-unbinds",
    ),
    # -- match ----------------------------------------------------------------------------
    case(
        """
        match cmd:
            case Point(x=0, y=yy):
                r = yy
            case [first, *rest]:
                r = first
            case {"k": v, **others}:
                r = v
            case Color.RED | None:
                r = 0
            case _:
                r = None
        print(r)
        """,
        "Color Point cmd",
        "first others r rest v yy",
        id="match-irrefutable",
    ),
    case(
        "match cmd:\n    case [a] if a > lim:\n        r = a\nprint(r)",
        "cmd lim r",
        "a r",
        id="match-refutable",
    ),
    case(
        "match c:\n    case _ if ok:\n        r = 1\nprint(r)", "c ok r", "r", id="guarded-wildcard"
    ),
    case(
        "match cmd:\n    case other:\n        r = other\nprint(r)",
        "cmd",
        "other r",
        id="capture-all",
    ),
    # -- walrus ---------------------------------------------------------------------------
    case("if (n := len(items)) > 3:\n    print(n)\nprint(n)", "items", "n", id="walrus-in-test"),
    case("a and (b := 1)\nprint(b)", "a b", "b", id="walrus-in-boolop"),
    case("x = (y := 1) if c else y", "c y", "x y", id="walrus-in-ifexp"),
    # Comprehension bodies are not followed in order: `y` counts as read (conservative).
    case("hits = [y for x in data if (y := f(x))]", "data f y", "hits y", id="walrus-in-comp"),
    case("[[(z := x) for x in row] for row in m]\nprint(z)", "m z", "z", id="walrus-nested-comp"),
    # -- del ------------------------------------------------------------------------------
    case("del x", "x", "", "x", id="del"),
    case("x = 1\ndel x", "", "", "x", id="del-after-assign"),
    case("del x\nx = 2", "x", "x", "", id="assign-after-del"),
    case("x = 1\nif c:\n    del x\nprint(x)", "c x", "x", "x", id="conditional-del"),
    case("del x\nif c:\n    x = 2", "c x", "x", "x", id="conditional-rebind"),
    case("for k in ks:\n    del d[k], cache", "cache d ks", "k", "cache", id="del-in-loop"),
    case("x = 1\nfor k in ks:\n    del x\nprint(x)", "ks x", "k x", "x", id="del-in-loop-unbinds"),
    # -- imports --------------------------------------------------------------------------
    case("import numpy as np\nnp.zeros(3)", "", "np", id="import-as"),
    case("import os.path\nos.sep", "", "os", id="import-dotted"),
    case("from collections import OrderedDict as OD, deque", "", "OD deque", id="from-import"),
    case("from os.path import *\njoin(a, b)", "a b join", "", id="star-import"),
    case("from . import sibling", "", "sibling", id="relative-import"),
    case("from __future__ import annotations", id="future-import"),
    # -- functions, closures, lambdas -----------------------------------------------------
    case("def f(x, *a, k=K, **kw):\n    return x + a + k + kw + scale", "K scale", "f", id="def"),
    case("limit = 5\ndef f():\n    return limit", "", "f limit", id="global-bound-before-def"),
    case("def f():\n    return limit\nlimit = 5", "limit", "f limit", id="global-bound-after-def"),
    case(
        "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)", "", "fact", id="recursive-def"
    ),
    case("def f():\n    print(x)\n    x = 1", "", "f", id="function-local-assigned-late"),
    case(
        """
        def make():
            base = 10
            def add(v):
                return v + base + offset
            return add
        """,
        "offset",
        "make",
        id="closure",
    ),
    case(
        """
        def counter():
            n = 0
            def inc():
                nonlocal n
                n += 1
                return n
            return inc
        """,
        "",
        "counter",
        id="nonlocal",
    ),
    case(
        """
        def bump():
            global counter, seen, gone
            counter += 1
            seen = True
            del gone
            return limit
        """,
        "counter gone limit",
        "bump counter seen",
        "gone",
        id="global-in-function",
    ),
    case(
        "def f():\n    global g\n    def g():\n        return h\n    import json as j",
        "h",
        "f g",
        id="global-def",
    ),
    case(
        "def outer():\n    global x\n    def inner():\n        return x + y\n    y = 1",
        "x",
        "outer",
        id="global-seen-by-inner",
    ),
    case(
        "@register(name=label)\n@cache\ndef f():\n    pass",
        "cache label register",
        "f",
        id="decorators",
    ),
    case(
        "def f(a: Tensor, *, b: Opt = None) -> Ret:\n    c: Local = a\n    return c",
        "Opt Ret Tensor",
        "f",
        id="function-annotations",
    ),
    case(
        "from __future__ import annotations\ndef f(a: Tensor) -> Ret:\n    pass",
        "",
        "f",
        id="function-annotations-lazy",
    ),
    case(
        "async def fetch(u):\n    async with client.get(u) as r:\n        return await r.json()",
        "client",
        "fetch",
        id="async-def",
    ),
    case("f = lambda a, b=B, *, c=C: a + b + c + D", "B C D", "f", id="lambda-defaults"),
    case("fs = [lambda: i for i in r]", "r", "fs", id="lambda-sees-comprehension-var"),
    case("fs = [lambda j=i: j + k for i in r]", "k r", "fs", id="lambda-default-in-comp"),
    case(
        "def f():\n    try:\n        pass\n    except E as e:\n        return e",
        "E",
        "f",
        id="fn-except",
    ),
    case(
        "def f(cmd):\n    match cmd:\n        case Point(x=px):\n            return px",
        "Point",
        "f",
        id="fn-match",
    ),
    case(
        "def f():\n    return [y for x in xs if (y := x)], y",
        "xs",
        "f",
        id="fn-walrus-in-comprehension",
    ),
    # -- comprehensions -------------------------------------------------------------------
    case("squares = [i * k for i in range(n) if i % m]", "k m n", "squares", id="list-comp"),
    case(
        "s = {x for x in xs}\nd = {k: v for k, v in items}", "items xs", "d s", id="set-dict-comp"
    ),
    case("total = sum(x * w for x in xs)", "w xs", "total", id="generator"),
    case("grid = [[x * y for y in ys] for x in xs]", "xs ys", "grid", id="nested-comprehension"),
    case(
        "class A:\n    xs = [1]\n    k = 2\n    ys = [x * k for x in xs]",
        "k",
        "A",
        id="comp-in-class",
    ),
    case("out = [x for x in x]", "x", "out", id="comp-iterable-shadowed"),
    case("def f(n):\n    return [n * x for x in data]", "data", "f", id="comp-sees-function-local"),
    # -- classes --------------------------------------------------------------------------
    case(
        """
        @dataclass
        class P(Base, metaclass=Meta):
            x: int = 0
            y: Foo = None
            scale = 2
            doubled = scale * factor
            def m(self, v=scale) -> Ret:
                return scale + helper(v) + P.k
        """,
        "Base Foo Meta Ret dataclass factor helper scale",
        "P",
        id="class",
    ),
    case(
        """
        class A:
            n = 1
            @property
            def v(self):
                return n
            @v.setter
            def v(self, val):
                pass
        """,
        "n",
        "A",
        id="class-locals-hidden-from-methods",
    ),
    case(
        "def f():\n    k = 1\n    class C:\n        v = k + g\n    return C",
        "g",
        "f",
        id="class-in-function",
    ),
    case("class A:\n    global G\n    G = 1", "", "A G", id="global-in-class"),
]


@pytest.mark.parametrize(("source", "reads", "assigns", "deletes"), CASES)
def test_names(
    source: str, reads: frozenset[str], assigns: frozenset[str], deletes: frozenset[str]
) -> None:
    names = analyze_cell(source)
    assert (names.reads, names.assigns, names.deletes) == (reads, assigns, deletes)


@pytest.mark.parametrize(
    ("source", "imports"),
    [
        ("import numpy as np", {"np": "numpy"}),
        ("import os.path", {"os": "os"}),
        ("import os.path as osp", {"osp": "os.path"}),
        ("import a, b.c as d", {"a": "a", "d": "b.c"}),
        ("from collections import OrderedDict as OD", {"OD": "collections:OrderedDict"}),
        ("from ..pkg import mod", {"mod": "..pkg:mod"}),
        ("from . import sibling", {"sibling": ".:sibling"}),
        ("from os.path import *", {}),
        ("import numpy as np\nnp = 1", {}),
        ("np = 1\nimport numpy as np", {"np": "numpy"}),
        ("import numpy as np\ndel np", {}),
        ("import numpy as np\nif c:\n    np = None", {}),
        ("try:\n    import ujson as json\nexcept ImportError:\n    import json", {}),
        (
            "try:\n    import ujson as json\nexcept ImportError:\n    json = None\nimport json",
            {"json": "json"},
        ),
        ("if c:\n    import json\nelse:\n    import json", {"json": "json"}),
        ("def f():\n    import json", {}),
        ("def f():\n    global json\n    import json", {}),
        ("from __future__ import annotations", {}),
    ],
)
def test_imports(source: str, imports: dict[str, str]) -> None:
    assert analyze_cell(source).imports == imports


@pytest.mark.parametrize(
    "source",
    [
        "x = ",
        "return 1",
        "yield 1",
        "def f():\n    nonlocal q",
        "def f():\n    await g()",
        "x = 1\nglobal x",
        "class A:\n    [y := 1 for _ in r]",
        "[x := 1 for x in r]",
    ],
)
def test_syntax_errors_propagate(source: str) -> None:
    with pytest.raises(SyntaxError):
        analyze_cell(source)


@pytest.mark.parametrize(
    ("cell", "reads", "assigns"),
    [
        ("%time x = y + 1", set(), set()),  # the magic's own code is not analysed
        ("files = !ls {pattern}", set(), {"files"}),
        ("%%bash\necho $HOME", set(), set()),
        ("x?", set(), set()),
        ("!pip install foo\nimport foo\nfoo.run(n)", {"n"}, {"foo"}),
        ("await asyncio.sleep(d)", {"asyncio", "d"}, set()),
    ],
)
def test_cells_as_ipython_transforms_them(cell: str, reads: set[str], assigns: set[str]) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    names = analyze_cell(TransformerManager().transform_cell(cell))
    assert (names.reads, names.assigns) == (reads, assigns)


def test_result_is_frozen_and_comparable() -> None:
    names = analyze_cell("import json\nout = json.dumps(obj)")
    assert names == CellNames(
        reads=frozenset({"obj"}),
        assigns=frozenset({"json", "out"}),
        deletes=frozenset(),
        imports={"json": "json"},
    )
    with pytest.raises(AttributeError):
        names.reads = frozenset()  # type: ignore[misc]


def test_builtins_with_a_binding_anywhere_stay_reads() -> None:
    # `id` is bound only by a function's `global`: a later call may rebind it, so it is shipped.
    names = analyze_cell("print(id(v))\ndef f():\n    global id\n    id = 1")
    assert names.reads == {"id", "v"}


def test_docstring_examples() -> None:
    assert doctest.testmod(_analysis, raise_on_error=True).attempted >= 1
