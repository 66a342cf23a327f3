from __future__ import annotations

import pytest

from reactive_blocks.paths import freeze_paths, is_related, require_name, validate_path


@pytest.mark.parametrize(
    ("a", "b", "related"),
    [
        ("doc", "doc", True),
        ("doc", "doc.title", True),
        ("doc.title", "doc", True),
        ("doc.title", "doc.title.upper", True),
        ("doc", "docs", False),
        ("docs.title", "doc", False),
        ("doc.title", "doc.body", False),
        ("items.0", "items.0.name", True),
    ],
)
def test_is_related(a, b, related):
    assert is_related(a, b) is related


@pytest.mark.parametrize("path", ["doc", "doc.title", "items.0.name", "a_b.c-d"])
def test_validate_path_accepts(path):
    assert validate_path(path) == path


@pytest.mark.parametrize("path", ["", ".doc", "doc.", "a..b", "a b", "a\n"])
def test_validate_path_rejects(path):
    with pytest.raises(ValueError, match="is not a dotted context path"):
        validate_path(path)


def test_validate_path_rejects_non_str():
    with pytest.raises(
        TypeError, match=r"path must be a str such as 'doc\.title', got int"
    ):
        validate_path(3)


def test_freeze_paths_refuses_bare_string():
    with pytest.raises(TypeError, match="not a single str"):
        freeze_paths("doc")


def test_require_name():
    assert require_name("x", name="scope") == "x"
    with pytest.raises(ValueError, match="scope must be a non-empty string"):
        require_name("", name="scope")
    with pytest.raises(TypeError, match="scope must be a str, got NoneType"):
        require_name(None, name="scope")
