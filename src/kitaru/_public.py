"""Public names report the public module they are imported from.

Classes and functions are defined in private modules (``kitaru.events._models``) and re-exported
by a public package (``kitaru.events``). Tracebacks, ``repr``, ``help()``, pickling and generated
API docs print ``__module__``, so a private path there sends a reader to a module they are told
not to import (docs/architecture.md, "Public surface"). Each public package calls
:func:`publish_names` once, after its imports.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any


def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def publish_names(module: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` to *module* for the exported classes and functions defined privately.

    A name exported by several public modules keeps the first public module that claims it: a
    package's ``__init__`` runs before anything imported through it, so ``ExecutionEvent``
    belongs to ``kitaru.events`` even though ``kitaru`` re-exports it too. Annotations are left
    alone: ``typing.get_type_hints`` resolves a function's through its ``__globals__`` and a
    class's through the module that defined it, which is why classes whose string annotations
    must still resolve are resolved here first (see :func:`_freeze_annotations`).
    """
    for name in names:
        obj = namespace.get(name)
        if not (isinstance(obj, type) or callable(obj)) or not hasattr(obj, "__module__"):
            continue
        current = getattr(obj, "__module__", None)
        if not isinstance(current, str) or not current.startswith("kitaru"):
            continue
        if not _is_private(current):
            continue
        if isinstance(obj, type):
            _freeze_annotations(obj)
        try:
            obj.__module__ = module
        except (AttributeError, TypeError):  # a builtin or extension type: leave it
            continue


def _freeze_annotations(cls: type) -> None:
    """Evaluate the class's own string annotations in the module that defined it.

    ``typing.get_type_hints(cls)`` looks names up in ``sys.modules[cls.__module__]``; once that
    is the public package, names the private module imported for its annotations would no longer
    be found. If they cannot be evaluated now (a name imported only for type checking), they are
    left as they were: their hints did not resolve before either.
    """
    if not inspect.get_annotations(cls):
        return
    try:
        resolved = inspect.get_annotations(cls, eval_str=True)
    except Exception:  # unresolvable before the rename too: leave them
        return
    cls.__annotations__ = resolved
