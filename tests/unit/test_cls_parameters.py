"""``jr.parameter()`` validation: at decoration and at construction, before any worker starts."""

from __future__ import annotations

from typing import Any

import pytest

import jupyter_remote as jr
from jupyter_remote.runtime._params import construct


def _cls(body: dict[str, Any], annotations: dict[str, Any] | None = None) -> type:
    def describe(self: Any) -> Any:
        return vars(self)

    ns: dict[str, Any] = {"describe": jr.method()(describe), **body}
    ns["__annotations__"] = annotations or {}
    return type("Model", (), ns)


@pytest.fixture
def model() -> jr.Cls:
    app = jr.App("params-unit")
    user = _cls(
        {
            "size": jr.parameter(default="small"),
            "n": jr.parameter(),
            "on": jr.parameter(init=False, default=True),
        },
        {"size": "str", "n": int, "on": bool},
    )
    return app.cls()(user)


def test_defaults_are_filled_in_and_sorted(model: jr.Cls) -> None:
    a, b = model(n=1), model(size="small", n=1)
    assert a._kwargs == b._kwargs == {"n": 1, "size": "small"}
    assert a._tag == b._tag != model(n=2)._tag


def test_positional_arguments_are_refused(model: jr.Cls) -> None:
    with pytest.raises(
        TypeError, match=r"keyword only, got 1 positional.*Model\(size=\.\.\., n=\.\.\.\)"
    ):
        model("large")


def test_unknown_name_suggests_the_close_one(model: jr.Cls) -> None:
    with pytest.raises(TypeError, match=r"unknown parameter 'sise' \(did you mean 'size'\?\)"):
        model(sise="large", n=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": "1"}, r"parameter 'n' takes a int, not str"),
        ({"n": True}, r"parameter 'n' takes a int, not bool"),
        ({"n": 1, "size": b"x"}, r"parameter 'size' takes a str, not bytes"),
    ],
)
def test_wrong_types_are_refused(model: jr.Cls, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        model(**kwargs)


def test_missing_required_and_init_false(model: jr.Cls) -> None:
    with pytest.raises(TypeError, match="missing the parameter 'n'"):
        model()
    with pytest.raises(TypeError, match=r"cannot set 'on': it is a jr.parameter\(init=False\)"):
        model(n=1, on=False)


def test_a_class_with_parameters_and_its_own_init_is_refused() -> None:
    user = _cls({"size": jr.parameter(), "__init__": lambda self: None}, {"size": str})
    with pytest.raises(TypeError, match=r"its own __init__: remove __init__.*@jr.enter\(\)"):
        jr.App("p").cls()(user)


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({}, "has no annotation"),
        ({"size": float}, "annotation <class 'float'>"),
        ({"size": "list[str]"}, "'list\\[str\\]'"),
    ],
)
def test_unsupported_annotations_are_refused(annotations: dict[str, Any], message: str) -> None:
    user = _cls({"size": jr.parameter()}, annotations)
    with pytest.raises(TypeError, match=message + r".*supported types: str, int, bool, bytes"):
        jr.App("p").cls()(user)


def test_a_default_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Model.size: the default 3 is not a str"):
        jr.App("p").cls()(_cls({"size": jr.parameter(default=3)}, {"size": str}))


def test_init_false_is_an_attribute_of_any_type_not_a_parameter() -> None:
    user = _cls(
        {"size": jr.parameter(), "cache": jr.parameter(init=False)}, {"size": str, "cache": dict}
    )
    model = jr.App("p").cls()(user)
    assert model(size="a")._kwargs == {"size": "a"}
    with pytest.raises(TypeError, match=r"its parameters: size$"):
        model(size="a", bogus=1)


def test_construct_sets_values_and_defaults_read_through() -> None:
    user = _cls(
        {"size": jr.parameter(default="small"), "n": jr.parameter()}, {"size": str, "n": int}
    )
    obj = construct(user, (), {"n": 3})
    assert (obj.size, obj.n) == ("small", 3)
    with pytest.raises(AttributeError, match="parameter 'n' has no value and no default"):
        construct(user, (), {}).n  # noqa: B018


def test_served_from_modal_module_paths() -> None:
    from jupyter_remote.cls import parameter

    assert parameter is jr.parameter
