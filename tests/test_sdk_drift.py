"""The tap's copy of singer-sdk's `Tap.invoke` cannot drift from the original unnoticed.

`TapUdemyBusiness.invoke` replaces the SDK's (to read `--state`/`--catalog` itself, to stop on
signals with a final STATE, to turn a failure into one line). An SDK release that changes its
`invoke` (a new step, a new argument to the tap) must fail here, so that someone compares the
two before the tap ships on that release.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import typing as t

from singer_sdk import Tap

from tap_udemy_business.tap import TapUdemyBusiness

#: The SDK's `Tap.invoke` body (docstring and comments left out) that the tap's copy was last
#: compared with, in singer-sdk 0.54.9. When this fails: read the SDK's new `invoke`, carry
#: what changed into `TapUdemyBusiness.invoke` (or decide it does not apply), then update it.
REVIEWED_SDK_INVOKE = "02756f948234486de809f540dfb14eff643d6b74e2150482c19f531879987433"


def _function(method: t.Callable[..., t.Any]) -> ast.FunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    return function


def _body_digest(function: ast.FunctionDef) -> str:
    """A digest of what the function does: its statements, without docstring or comments.

    Of the statements as source (`ast.unparse`), which reads the same on every Python that
    parses them, unlike `ast.dump`, whose output changed in 3.13.
    """
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    source = ast.unparse(ast.Module(body=body, type_ignores=[]))
    return hashlib.sha256(source.encode()).hexdigest()


def _tap_construction(function: ast.FunctionDef) -> set[str]:
    """The keyword arguments `invoke` makes the tap with (`cls(config=..., ...)`)."""
    calls = [
        node
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cls"
    ]
    assert len(calls) == 1, "invoke should make exactly one tap"
    return {keyword.arg for keyword in calls[0].keywords if keyword.arg}


def _called_methods(function: ast.FunctionDef) -> set[str]:
    """The methods `invoke` calls on the class or the tap (`cls.x()`, `tap.x()`, `super()`)."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in {"cls", "tap"}:
                names.add(f"{target.id}.{node.func.attr}")
            elif isinstance(target, ast.Call) and getattr(target.func, "id", "") == "super":
                names.add(f"super.{node.func.attr}")
    return names


def test_the_sdk_invoke_is_the_one_the_tap_s_copy_was_compared_with() -> None:
    digest = _body_digest(_function(Tap.invoke))
    assert digest == REVIEWED_SDK_INVOKE, (
        "singer-sdk's Tap.invoke changed: compare it with TapUdemyBusiness.invoke, carry the "
        f"change over, then set REVIEWED_SDK_INVOKE = {digest!r}"
    )


def test_the_tap_s_invoke_takes_the_sdk_s_arguments() -> None:
    ours = inspect.signature(TapUdemyBusiness.invoke).parameters
    theirs = inspect.signature(Tap.invoke).parameters
    assert list(ours) == list(theirs)
    assert all(ours[name].default == theirs[name].default for name in theirs)


def test_the_tap_s_invoke_does_every_step_of_the_sdk_s() -> None:
    sdk, tap = _function(Tap.invoke), _function(TapUdemyBusiness.invoke)
    assert _tap_construction(tap) == _tap_construction(sdk)
    # `super().invoke` in the SDK and `super(Tap, cls).invoke` in the tap are the same
    # step: PluginBase's (`--about`), which the tap reaches past the `Tap.invoke` it replaces.
    missing = _called_methods(sdk) - _called_methods(tap)
    assert not missing, f"TapUdemyBusiness.invoke lacks the SDK's steps: {sorted(missing)}"
