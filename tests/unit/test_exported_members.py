import kitaru
import kitaru.events


def test_public_names_are_exported_and_documented():
    for name in kitaru.__all__:
        assert hasattr(kitaru, name), name
    for name in (
        "checkpoint",
        "flow",
        "KitaruClient",
        "ExecutionEvent",
        "progress",
        "events",
        "KitaruError",
        "KitaruUsageError",
        "KitaruContextError",
        "KitaruFeatureNotAvailableError",
        "KitaruBackendError",
        "KitaruStateError",
    ):
        assert name in kitaru.__all__, name
    for name in kitaru.events.__all__:
        obj = getattr(kitaru.events, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"kitaru.events.{name} has no docstring"


def test_progress_is_the_same_object_and_kinds_are_constants():
    assert kitaru.events.progress is kitaru.progress
    assert kitaru.events.CHECKPOINT_STARTED_KIND == "kitaru.checkpoint.started"
    assert kitaru.events.CHECKPOINT_PROGRESS_KIND == "kitaru.checkpoint.progress"
    assert kitaru.events.CHECKPOINT_RETURNED_KIND == "kitaru.checkpoint.returned"
    assert kitaru.events.CHECKPOINT_FAILED_KIND == "kitaru.checkpoint.failed"


def test_error_tree():
    for err in (
        kitaru.KitaruUsageError,
        kitaru.KitaruContextError,
        kitaru.KitaruFeatureNotAvailableError,
        kitaru.KitaruBackendError,
        kitaru.KitaruStateError,
        kitaru.KitaruOutputError,
    ):
        assert issubclass(err, kitaru.KitaruError)
    assert issubclass(kitaru.KitaruUsageError, ValueError)
    assert issubclass(kitaru.KitaruOutputError, kitaru.KitaruUsageError)


def test_execution_event_fields_are_exactly_the_documented_ones():
    import dataclasses

    names = [f.name for f in dataclasses.fields(kitaru.ExecutionEvent)]
    assert names == [
        "exec_id",
        "kind",
        "payload",
        "correlation_id",
        "index",
        "cursor",
        "checkpoint_id",
        "checkpoint_name",
        "step_name",
    ]
    event = kitaru.ExecutionEvent("e", "k", {}, "c", 0, None, None, None, None)
    try:
        event.kind = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("ExecutionEvent must be immutable")
