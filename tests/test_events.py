from __future__ import annotations

import dataclasses
import time

import pytest

from reactive_blocks import ChangeEvent, ConnectionInfo


def test_change_event_freezes_collections():
    event = ChangeEvent("doc-1", ["doc.title", "doc.title"], audience=["7", "8"])
    assert event.changed_paths == frozenset({"doc.title"})
    assert isinstance(event.changed_paths, frozenset)
    assert event.audience == frozenset({"7", "8"})
    assert isinstance(event.audience, frozenset)


def test_change_event_keeps_origin_and_defaults():
    event = ChangeEvent("doc-1", {"doc"}, origin="tab-1")
    assert event.origin == "tab-1"
    assert event.audience is None
    assert ChangeEvent("doc-1", set()).changed_paths == frozenset()


def test_change_event_is_frozen_and_slotted():
    event = ChangeEvent("doc-1", {"doc"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.scope = "other"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_change_event_equality_ignores_input_type():
    assert ChangeEvent("s", ["a", "b"]) == ChangeEvent("s", frozenset({"b", "a"}))


def test_bare_str_changed_paths_is_type_error():
    with pytest.raises(
        TypeError,
        match=r"changed_paths must be a collection of strings, not a single str: 'doc.title'",
    ):
        ChangeEvent("doc-1", "doc.title")  # type: ignore[arg-type]


def test_bare_str_audience_is_type_error():
    with pytest.raises(
        TypeError,
        match=r"audience must be a collection of strings, not a single str: '7'",
    ):
        ChangeEvent("doc-1", {"doc"}, audience="7")  # type: ignore[arg-type]


def test_int_in_audience_names_str_user_pk():
    with pytest.raises(TypeError, match=r"got 7 \(int\)\. .*str\(user\.pk\)"):
        ChangeEvent("doc-1", {"doc"}, audience={7})  # type: ignore[arg-type]


def test_non_iterable_changed_paths_is_type_error():
    with pytest.raises(TypeError, match="got int: 5"):
        ChangeEvent("doc-1", 5)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["", "doc..title", " doc", "doc.", "doc title"])
def test_malformed_path_is_rejected(path):
    with pytest.raises(ValueError, match="changed_paths"):
        ChangeEvent("doc-1", {path})


def test_empty_scope_is_value_error():
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        ChangeEvent("", {"doc"})


def test_non_str_scope_is_type_error():
    with pytest.raises(TypeError, match="scope must be a str, got int: 42"):
        ChangeEvent(42, {"doc"})  # type: ignore[arg-type]


def test_non_str_origin_is_type_error():
    with pytest.raises(TypeError, match="origin must be a str or None"):
        ChangeEvent("doc-1", {"doc"}, origin=7)  # type: ignore[arg-type]


def test_recheck_must_be_a_bool():
    assert ChangeEvent("doc-1", {"doc"}).recheck is False
    assert ChangeEvent("doc-1", {"doc"}, None, None, True).recheck is True
    with pytest.raises(TypeError, match="recheck must be a bool, got str: 'yes'"):
        ChangeEvent("doc-1", {"doc"}, recheck="yes")  # type: ignore[arg-type]


def test_connection_info_defaults():
    before = time.monotonic()
    info = ConnectionInfo("tab-1")
    assert info.user_id is None
    assert before <= info.connected_at <= time.monotonic()


def test_connection_info_requires_session_id():
    with pytest.raises(ValueError, match="session_id must be a non-empty string"):
        ConnectionInfo("")


def test_connection_info_int_user_id_is_type_error():
    with pytest.raises(
        TypeError,
        match=r"user_id must be a str or None, got int: 7\. Use str\(user\.pk\)",
    ):
        ConnectionInfo("tab-1", user_id=7)  # type: ignore[arg-type]
