"""``group_by_execution``: a batch of one execution (judged at once) and any other alike."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitaru._checks import execution_id_problem
from kitaru.server._errors import ApiError
from kitaru.server._routes_ingest import group_by_execution

_EXEC_IDS = st.sampled_from(["exec-a", "exec-b", "", " ", "a/b", 7, None, ["exec-a"]])


def _expected(items: list[Any]) -> dict[str, list[Any]] | str:
    """The groups as docs/protocol.md describes them, or the message of the refusal."""
    groups: dict[str, list[Any]] = {}
    for pos, item in enumerate(items):
        if type(item) is not dict:
            return f"event [{pos}] must be a JSON object"
        exec_id = item.get("exec_id")
        problem = execution_id_problem(exec_id)
        if problem is not None:
            return f"event [{pos}]: {problem}"
        groups.setdefault(exec_id, []).append(item)
    return groups


@st.composite
def _items(draw: st.DrawFn) -> list[Any]:
    same = draw(st.booleans())
    first = draw(_EXEC_IDS)
    out: list[Any] = []
    for i in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from([1, "x", None, [1]])))  # not an object
            continue
        item: dict[str, Any] = {"index": i}
        if draw(st.integers(0, 9)):
            item["exec_id"] = first if same else draw(_EXEC_IDS)
        out.append(item)
    return out


@settings(max_examples=300, deadline=None)
@given(_items())
def test_groups_and_refusals_are_as_documented(items: list[Any]) -> None:
    expected = _expected(items)
    if isinstance(expected, str):
        with pytest.raises(ApiError) as err:
            group_by_execution(items)
        assert err.value.message.startswith(expected)
    else:
        assert group_by_execution(items) == expected


def test_a_batch_of_one_execution_is_one_group_in_order() -> None:
    items = [{"exec_id": "exec-a", "index": i} for i in range(500)]
    groups = group_by_execution(items)
    assert list(groups) == ["exec-a"]
    assert groups["exec-a"] == items


def test_a_bad_execution_id_shared_by_every_event_is_refused_at_the_first() -> None:
    with pytest.raises(ApiError) as err:
        group_by_execution([{"exec_id": "a/b"}, {"exec_id": "a/b"}])
    assert err.value.message.startswith("event [0]: ")
