"""Functions defined in notebook cells calling each other from workers (a real kernel)."""

from __future__ import annotations

from kernel_harness import Kernel


def test_cell_functions_call_each_other_and_print_into_the_cell(kernel: Kernel) -> None:
    kernel.ok(
        "import jupyter_remote as jr\n"
        "app = jr.App('nb-refs')\n"
        "@app.function()\n"
        "def a(x):\n"
        "    print('a got', x)\n"
        "    return x + 1\n"
        "@app.function()\n"
        "def b(x):\n"
        "    return a.remote(x) * 10"
    )
    ex = kernel.ok("print(b.remote(1))")
    assert ex.stdout == "a got 1\n20\n"  # a's output, two calls away, lands in this cell
    assert kernel.ok("print(b.local(2))").stdout == "a got 2\n30\n"
