"""Which notebook names a ``%%remote`` cell reads, and which it binds, deletes or imports.

Top-level statements are followed in execution order, so ``y = 1; print(y)`` reads no
``y``. Whatever may run before a binding (a branch, a loop body, a function called later)
counts as a read: at worst that ships a value the cell overwrites, where missing it would
raise ``NameError`` on the worker. Function, class and comprehension bodies are scoped as
the compiler does (``global``, ``nonlocal``, closures, ``:=``) but not followed in order.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["CellNames", "analyze_cell"]

# IPython's own names and its output history: never shipped, even when the cell uses them.
_IGNORED = frozenset(
    {"get_ipython", "__name__", "__builtins__", "__file__", "_", "__", "___"}
    | {"In", "Out", "exit", "quit"}
)
_HISTORY = re.compile(r"_(?:i{1,3}|i\d+|\d+|oh|ih|dh)")

_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_Comprehension = ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
_Scope = _Function | ast.ClassDef | _Comprehension


@dataclass(frozen=True)
class CellNames:
    """The names one cell exchanges with the notebook's global namespace.

    ``assigns`` and ``deletes`` may share a name when a branch decides which happens
    last: sync each back by what the worker's namespace holds (present: copy it,
    absent: delete it).

    >>> names = analyze_cell("import numpy as np\\ntotal += np.sum(xs)\\ndel xs")
    >>> sorted(names.reads), sorted(names.assigns), sorted(names.deletes), names.imports
    (['total', 'xs'], ['np', 'total'], ['xs'], {'np': 'numpy'})
    """

    reads: frozenset[str]
    """Free names the cell needs from the notebook's global namespace (builtins left out)."""
    assigns: frozenset[str]
    """Names the cell may bind at top level, also through ``global`` in a function."""
    deletes: frozenset[str] = frozenset()
    """Names the cell may ``del`` at top level."""
    imports: dict[str, str] = field(default_factory=dict, hash=False)
    """Names of ``assigns`` bound only by imports: ``"module"`` or ``"module:attr"``."""


def analyze_cell(source: str) -> CellNames:
    """Analyze one cell of Python source (after IPython's ``transform_cell``).

    Raises ``SyntaxError`` as compiling it would; top-level ``await`` is allowed.
    """
    compile(source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    return _Analyzer(ast.parse(source)).result()


class _Analyzer:
    def __init__(self, tree: ast.Module) -> None:
        self.reads: set[str] = set()
        self.assigns: set[str] = set()
        self.deletes: set[str] = set()
        self.ever_bound: set[str] = set()
        self.imported: dict[str, set[str]] = {}
        self.rebound: set[str] = set()  # may be bound or deleted other than by an import
        self.lazy_annotations = any(
            isinstance(stmt, ast.ImportFrom)
            and stmt.module == "__future__"
            and any(alias.name == "annotations" for alias in stmt.names)
            for stmt in tree.body
        )
        self._block(tree.body, set(), straight=True)

    def result(self) -> CellNames:
        hidden = (set(vars(builtins)) - self.ever_bound) | _IGNORED
        reads = {name for name in self.reads if name not in hidden and not _HISTORY.fullmatch(name)}
        imports = {
            name: next(iter(paths))
            for name, paths in self.imported.items()
            if len(paths) == 1 and name in self.assigns and name not in self.rebound
        }
        return CellNames(
            frozenset(reads), frozenset(self.assigns), frozenset(self.deletes), imports
        )

    # -- top level, in execution order --------------------------------------------------
    # `bound` holds the names definitely bound at this point; a branch works on a copy.
    # `straight` says the statement surely runs, after everything before it.

    def _block(self, body: Sequence[ast.stmt], bound: set[str], straight: bool) -> set[str]:
        for stmt in body:
            self._stmt(stmt, bound, straight)
        return bound

    def _stmt(self, node: ast.stmt, bound: set[str], straight: bool) -> None:
        match node:
            case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
                for part in self._outer(node):
                    self._expr(part, bound)
                # The body runs once the name is bound: recursion reads nothing.
                self._scope(node, (), frozenset(bound | {node.name}), None)
                self._bind(node.name, bound, straight)
            case ast.Assign(targets=targets, value=value):
                self._expr(value, bound)
                for target in targets:
                    self._target(target, bound, straight)
            case ast.AugAssign(target=target, value=value):
                if isinstance(target, ast.Name):
                    self._read(target.id, bound)
                self._expr(value, bound)
                self._target(target, bound, straight)
            case ast.AnnAssign(target=target, annotation=annotation, value=value):
                self._expr(value, bound)
                if not self.lazy_annotations:
                    self._expr(annotation, bound)
                if value is not None or not isinstance(target, ast.Name):
                    self._target(target, bound, straight)
            case ast.Delete(targets=targets):
                for target in targets:
                    self._target(target, bound, straight, delete=True)
            case ast.Import(names=aliases) | ast.ImportFrom(names=aliases):
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    return  # a compiler directive, not a name for the notebook
                for alias in aliases:
                    if alias.name != "*":
                        self._bind(_alias_name(alias), bound, straight, _import_path(node, alias))
            case ast.For() | ast.AsyncFor() | ast.While():
                inner = set(bound)
                if isinstance(node, ast.While):
                    self._expr(node.test, bound)
                else:
                    self._expr(node.iter, bound)
                    self._target(node.target, inner, straight=False)
                self._block(node.body, inner, straight=False)
                self._block(node.orelse, set(bound), straight=False)
                bound -= _deleted(node)
            case ast.If():
                self._expr(node.test, bound)
                exits = [
                    self._block(branch, set(bound), straight=False)
                    for branch in (node.body, node.orelse)
                    if not _raises(branch)
                ]
                _join(bound, exits)
            case ast.With() | ast.AsyncWith():
                # Taken as straight-line: an exception the context manager suppresses
                # (contextlib.suppress) could skip bindings that are counted here.
                for item in node.items:
                    self._expr(item.context_expr, bound)
                    if item.optional_vars is not None:
                        self._target(item.optional_vars, bound, straight)
                self._block(node.body, bound, straight)
            case ast.Try() | ast.TryStar():
                self._try(node, bound)
            case ast.Match():
                self._match(node, bound)
            case _:  # Expr, Raise, Assert, Global, Pass, ...: expressions evaluated in place
                for child in ast.iter_child_nodes(node):
                    self._expr(child, bound)

    def _try(self, node: ast.Try | ast.TryStar, bound: set[str]) -> None:
        exits = [self._block(node.orelse, self._block(node.body, set(bound), False), False)]
        for handler in node.handlers:
            inner = bound - _deleted(*node.body)  # the body may fail anywhere
            self._expr(handler.type, inner)
            if handler.name is not None:  # bound in the handler, deleted after it
                inner.add(handler.name)
            self._block(handler.body, inner, straight=False)
            inner.discard(handler.name or "")
            if not _raises(handler.body):
                exits.append(inner)
        final = self._block(node.finalbody, bound - _deleted(node), straight=False)
        _join(bound, exits)  # a `del` in `finally` reads its name already: `final` lacks it
        bound |= final

    def _match(self, node: ast.Match, bound: set[str]) -> None:
        self._expr(node.subject, bound)
        exits = []
        for case in node.cases:
            inner = set(bound)
            patterns = list(ast.walk(case.pattern))
            for sub in patterns:  # value and class patterns: dotted names, all loads
                if isinstance(sub, ast.Name):
                    self._read(sub.id, inner)
            for name in (name for sub in patterns for name in _bound_names(sub)):
                self._bind(name, inner, straight=False)
            self._expr(case.guard, inner)
            self._block(case.body, inner, straight=False)
            if not _raises(case.body):
                exits.append(inner)
        last = node.cases[-1]
        irrefutable = isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None
        if not irrefutable or last.guard is not None:
            exits.append(set(bound))
        _join(bound, exits)

    def _expr(self, node: ast.AST | None, bound: set[str], sure: bool = True) -> None:
        """Record the reads of an expression; ``sure``: it is evaluated whenever reached."""
        match node:
            case None:
                pass
            case ast.Name(id=name, ctx=ast.Load()):
                self._read(name, bound)
            case ast.Name(id=name):  # only from statements without a case of their own
                self._bind(name, bound, straight=False)
            case ast.NamedExpr(target=ast.Name(id=name), value=value):
                self._expr(value, bound, sure)
                self._bind(name, bound if sure else set(), straight=False)
            case ast.BoolOp(values=[first, *rest]):
                self._expr(first, bound, sure)
                for value in rest:
                    self._expr(value, bound, sure=False)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                self._expr(test, bound, sure)
                self._expr(body, bound, sure=False)
                self._expr(orelse, bound, sure=False)
            case ast.expr() if isinstance(node, ast.Lambda | _Comprehension):
                for part in self._outer(node):
                    self._expr(part, bound, sure)
                self._scope(node, (), frozenset(bound), None)
            case _:
                for child in ast.iter_child_nodes(node):
                    self._expr(child, bound, sure)

    def _target(
        self, target: ast.expr, bound: set[str], straight: bool, delete: bool = False
    ) -> None:
        match target:
            case ast.Name(id=name) if delete:
                self._delete(name, bound, straight)
            case ast.Name(id=name):
                self._bind(name, bound, straight)
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                for elt in elts:
                    self._target(elt, bound, straight, delete)
            case ast.Starred(value=value):
                self._target(value, bound, straight, delete)
            case _:  # attribute or subscript: the object and the index are read
                self._expr(target, bound)

    def _delete(self, name: str, bound: set[str], straight: bool) -> None:
        self._read(name, bound)  # it must exist
        bound.discard(name)
        self.deletes.add(name)
        self.rebound.add(name)
        if straight:
            self.assigns.discard(name)

    def _read(self, name: str, bound: Container[str]) -> None:
        if name not in bound:
            self.reads.add(name)

    def _bind(self, name: str, bound: set[str], straight: bool, module: str | None = None) -> None:
        bound.add(name)
        self.assigns.add(name)
        self.ever_bound.add(name)
        if straight:  # this binding is the one that counts from now on
            self.deletes.discard(name)
            self.rebound.discard(name)
            self.imported.pop(name, None)
        if module is None:
            self.rebound.add(name)
        else:
            self.imported.setdefault(name, set()).add(module)

    # -- function, class and comprehension bodies, scoped but not in order ---------------

    def _scope(
        self,
        node: _Scope,
        chain: tuple[frozenset[str], ...],
        bound: frozenset[str],
        owner: frozenset[str] | None,
    ) -> None:
        """Record the global reads and binds of the body of ``node``.

        ``chain``: the locals of the enclosing function-like scopes, innermost last;
        ``owner``: the ``global`` names of the scope where a comprehension's ``:=``
        binds (``None``: the module); ``bound``: what the cell has surely bound when
        ``node`` is created.
        """
        nodes = list(self._own_nodes(node))
        declared = {name for n in nodes if isinstance(n, ast.Global) for name in n.names}
        outer = {name for n in nodes if isinstance(n, ast.Nonlocal) for name in n.names}
        local = {name for n in nodes for name in _bound_names(n)}
        if isinstance(node, _Comprehension):
            declared |= {name for name in self._walrus(node) if owner is None or name in owner}
        else:
            local |= {w for n in nodes if isinstance(n, _Comprehension) for w in self._walrus(n)}
        local -= declared | outer
        # Class bodies are invisible to the functions defined in them.
        inner_chain = chain if isinstance(node, ast.ClassDef) else (*chain, frozenset(local))
        inner_owner = owner if isinstance(node, _Comprehension) else frozenset(declared)

        def is_global(name: str) -> bool:
            if name in declared:
                return True
            return name not in local | outer and not any(name in scope for scope in chain)

        for n in nodes:
            match n:
                case ast.Name(id=name, ctx=ast.Load()) | ast.AugAssign(target=ast.Name(id=name)):
                    if is_global(name):
                        self._read(name, bound)
            for name in _bound_names(n):
                if name not in declared:
                    continue
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Del):
                    self._delete(name, set(bound), straight=False)
                else:
                    self._bind(name, set(), straight=False)
            if isinstance(n, _Scope):
                self._scope(n, inner_chain, bound, inner_owner)

    def _walrus(self, comprehension: _Comprehension) -> set[str]:
        """The targets of ``:=`` in ``comprehension``, which bind in the enclosing scope."""
        names: set[str] = set()
        for n in self._own_nodes(comprehension):
            if isinstance(n, ast.NamedExpr):
                names.add(n.target.id)
            elif isinstance(n, _Comprehension):
                names |= self._walrus(n)
        return names

    def _own_nodes(self, scope: _Scope) -> Iterator[ast.AST]:
        """The nodes evaluated in the scope of ``scope``: nested bodies left out."""
        skip_annotations = self.lazy_annotations or isinstance(scope, _Function)
        stack = _inner(scope)
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, _Scope):
                stack += self._outer(node)
            elif isinstance(node, ast.AnnAssign) and skip_annotations:
                stack += [node.target] if node.value is None else [node.target, node.value]
            elif not isinstance(node, ast.arg):  # parameter annotations are outer parts
                stack += ast.iter_child_nodes(node)

    def _outer(self, node: _Scope) -> list[ast.AST]:
        """The parts of ``node`` evaluated in the enclosing scope, when it is created."""
        if isinstance(node, ast.ClassDef):
            return [*node.decorator_list, *node.bases, *node.keywords]
        if isinstance(node, _Comprehension):
            return [node.generators[0].iter]
        parts: list[ast.AST] = [*node.args.defaults, *filter(None, node.args.kw_defaults)]
        if isinstance(node, ast.Lambda):
            return parts
        annotations = [] if self.lazy_annotations else [node.returns]
        annotations += [] if self.lazy_annotations else [a.annotation for a in _params(node)]
        return [*node.decorator_list, *parts, *filter(None, annotations)]


def _inner(node: _Scope) -> list[ast.AST]:
    """The parts of ``node`` evaluated in its own scope (parameters first)."""
    if isinstance(node, ast.ClassDef):
        return list(node.body)
    if isinstance(node, _Comprehension):
        first, *rest = node.generators
        parts: list[ast.AST] = [first.target, *first.ifs]
        for gen in rest:
            parts += [gen.iter, gen.target, *gen.ifs]
        return parts + ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt])
    body = [node.body] if isinstance(node, ast.Lambda) else node.body
    return [*_params(node), *body]


def _params(node: _Function) -> list[ast.arg]:
    args = node.args
    star = [arg for arg in (args.vararg, args.kwarg) if arg is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *star]


def _bound_names(node: ast.AST) -> list[str]:
    """The names ``node`` itself binds (or deletes) in the scope it belongs to."""
    match node:
        case ast.Name(id=name, ctx=ast.Store() | ast.Del()) | ast.arg(arg=name):
            return [name]
        case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name) | ast.ClassDef(name=name):
            return [name]
        case ast.Import(names=aliases) | ast.ImportFrom(names=aliases):
            return [_alias_name(alias) for alias in aliases if alias.name != "*"]
        case (
            ast.ExceptHandler(name=str() as name)
            | ast.MatchAs(name=str() as name)
            | ast.MatchStar(name=str() as name)
            | ast.MatchMapping(rest=str() as name)
        ):
            return [name]
    return []


def _alias_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _import_path(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    if isinstance(node, ast.ImportFrom):
        return f"{'.' * node.level}{node.module or ''}:{alias.name}"
    return alias.name if alias.asname else alias.name.split(".")[0]


def _deleted(*nodes: ast.AST) -> set[str]:
    """Names that a ``del`` or the end of an ``except ... as`` under ``nodes`` may unbind."""
    names: set[str] = set()
    for node in (sub for root in nodes for sub in ast.walk(root)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name is not None:
            names.add(node.name)
    return names


def _raises(body: Sequence[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], ast.Raise)


def _join(bound: set[str], exits: list[set[str]]) -> None:
    """Keep in ``bound`` what every way out of a compound statement has bound."""
    if exits:
        common = set.intersection(*exits)
        bound.clear()
        bound.update(common)
