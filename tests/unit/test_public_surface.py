"""Every public module: its exported names resolve and are documented; one error tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from types import ModuleType

import pytest

import kitaru
import kitaru.exceptions
from kitaru.exceptions import KitaruError


def _modules() -> list[ModuleType]:
    names = ["kitaru"] + [
        info.name for info in pkgutil.walk_packages(kitaru.__path__, prefix="kitaru.")
    ]
    return [importlib.import_module(name) for name in names if name != "kitaru.cli.__main__"]


MODULES = _modules()
PUBLIC = [m for m in MODULES if not any(part.startswith("_") for part in m.__name__.split("."))]


def test_the_public_modules_are_the_documented_ones() -> None:
    assert sorted(m.__name__ for m in PUBLIC) == [
        "kitaru",
        "kitaru.adapters",
        "kitaru.adapters.claude_agent_sdk",
        "kitaru.adapters.langgraph",
        "kitaru.adapters.openai_agents",
        "kitaru.adapters.pydantic_ai",
        "kitaru.backends",
        "kitaru.cli",
        "kitaru.client",
        "kitaru.environment_variables",
        "kitaru.events",
        "kitaru.exceptions",
        "kitaru.lanes",
        "kitaru.otel",
        "kitaru.remote",
        "kitaru.runtime",
        "kitaru.server",
        "kitaru.store",
        "kitaru.testing",
    ]


@pytest.mark.parametrize("module", PUBLIC, ids=lambda m: m.__name__)
def test_every_exported_name_resolves_and_is_documented(module: ModuleType) -> None:
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__"
    assert module.__doc__, f"{module.__name__} has no docstring"
    assert len(set(exported)) == len(exported), f"{module.__name__}.__all__ repeats a name"
    for name in exported:
        obj = getattr(module, name)  # AttributeError names the missing export
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_internals_are_not_exported_from_kitaru_events() -> None:
    import kitaru.events

    for name in ("Publisher", "Transport", "EncodedEvent", "NoopTransport"):
        assert name not in kitaru.events.__all__
        assert not hasattr(kitaru.events, name), name


def test_every_error_class_is_in_the_one_tree() -> None:
    tree = kitaru.exceptions.__doc__ or ""
    found = set()
    for module in MODULES:
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found.add(name)
                assert issubclass(obj, KitaruError), f"{module.__name__}.{name} is outside"
                assert f"{name}" in tree, f"{name} is not drawn in kitaru/exceptions.py"
    # the tree is not drawn from a list that forgot a whole package
    assert {"TransportDisabledError", "MissingExtraError", "ApiError", "StreamGapError"} <= found


def _exported_objects() -> list[tuple[str, object]]:
    found = []
    for module in PUBLIC:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
                "kitaru"
            ):
                found.append((f"{module.__name__}.{name}", obj))
    return found


EXPORTED = _exported_objects()


@pytest.mark.parametrize(("path", "obj"), EXPORTED, ids=[p for p, _ in EXPORTED])
def test_public_names_report_a_public_module(path: str, obj: object) -> None:
    module_name = obj.__module__  # type: ignore[attr-defined]
    assert not any(part.startswith("_") for part in module_name.split(".")), (
        f"{path} reports the private module {module_name}"
    )
    # the reported path leads back to the very same object
    assert getattr(importlib.import_module(module_name), obj.__qualname__) is obj  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "obj"),
    [(p, o) for p, o in EXPORTED if inspect.isclass(o)],
    ids=[p for p, o in EXPORTED if inspect.isclass(o)],
)
def test_public_classes_keep_resolvable_type_hints(path: str, obj: type) -> None:
    # the class's annotations still resolve although it now reports the public package
    hints = typing.get_type_hints(obj)
    assert not any(isinstance(h, str) for h in hints.values()), path
