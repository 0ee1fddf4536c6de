"""What changes a PydanticAI run's answer, as plain data for the checkpoint's cache key.

See ``docs/adapters.md`` ("Cache keys"): the model, the output type, the instructions, the
tools, the model settings and the deferred tool results all join the key; ``deps`` and other
runtime objects do not. With ``cache=True`` an input that cannot be keyed is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kitaru.exceptions import KitaruUsageError

__all__ = ["run_identity"]


class _Unkeyable(Exception):
    pass


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        raise _Unkeyable(type(obj).__name__)
    return f"{module}.{name}"


def _type_id(spec: Any) -> Any:
    if spec is None or isinstance(spec, str | int | float | bool):
        return spec
    if isinstance(spec, list | tuple):
        return [_type_id(s) for s in spec]
    inner = getattr(spec, "outputs", None) or getattr(spec, "output", None)
    if inner is not None and not isinstance(spec, type):
        # PydanticAI's ToolOutput / NativeOutput / PromptedOutput wrappers.
        return {"wrapper": type(spec).__name__, "of": _type_id(inner)}
    args = getattr(spec, "__args__", None)
    if args:
        return {"type": str(spec)}
    return _qualname(spec)


def _model_id(model: Any) -> Any:
    if model is None or isinstance(model, str):
        return model
    name = getattr(model, "model_name", None)
    system = getattr(model, "system", None)
    if not isinstance(name, str):
        raise _Unkeyable(type(model).__name__)
    return {"class": _qualname(type(model)), "system": str(system), "name": name}


def _instruction_id(item: Any) -> Any:
    if item is None or isinstance(item, str):
        return item
    if isinstance(item, list | tuple):
        return [_instruction_id(i) for i in item]
    func = getattr(item, "function", item)
    return {"callable": _qualname(func)}


def _tools(toolsets: Any) -> list[str]:
    names: list[str] = []
    for toolset in toolsets or ():
        tools = getattr(toolset, "tools", None)
        if isinstance(tools, Mapping):
            names.extend(str(n) for n in tools)
        else:
            names.append(f"toolset:{_qualname(type(toolset))}:{getattr(toolset, 'id', None)}")
    return sorted(names)


def _json(value: Any) -> Any:
    if value is None:
        return None
    try:
        from pydantic_core import to_jsonable_python

        jsonable = to_jsonable_python(value)
        json.dumps(jsonable)
    except Exception as exc:
        raise _Unkeyable(type(value).__name__) from exc
    return jsonable


def _identity(agent: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    instructions = list(getattr(agent, "_instructions", None) or ())
    return {
        "model": _model_id(kwargs.get("model") or getattr(agent, "model", None)),
        "output_type": _type_id(kwargs.get("output_type") or getattr(agent, "output_type", None)),
        "instructions": [
            _instruction_id(instructions),
            _instruction_id(kwargs.get("instructions")),
        ],
        "tools": _tools([*getattr(agent, "toolsets", ()), *(kwargs.get("toolsets") or ())]),
        "model_settings": [
            _json(getattr(agent, "model_settings", None)),
            _json(kwargs.get("model_settings")),
        ],
        "deferred_tool_results": _json(kwargs.get("deferred_tool_results")),
    }


def run_identity(agent: Any, kwargs: Mapping[str, Any], *, strict: bool) -> dict[str, Any]:
    """``{"identity": ...}``: what changes the run's answer, as plain data.

    Raises:
        KitaruUsageError: ``strict`` (``cache=True``) and an input cannot be keyed.
    """
    try:
        return {"identity": _identity(agent, kwargs)}
    except _Unkeyable as exc:
        if strict:
            raise KitaruUsageError(
                f"KitaruAgent(cache=True) cannot key this run: a {exc} input has no stable "
                "identity (pass a model name or a model with model_name, JSON-safe "
                "model_settings, or use cache=False)"
            ) from None
        return {"identity": None}
