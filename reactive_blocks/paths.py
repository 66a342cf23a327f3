"""Context paths: dotted names such as ``doc.author.name``, and their validation."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "MAX_SCOPE_LENGTH",
    "freeze_paths",
    "freeze_strings",
    "is_related",
    "require_name",
    "validate_path",
    "validate_scope",
]

# Segments are what Django's template variable lookups use: names, list indexes,
# dictionary keys. No whitespace and no empty segment.
_PATH_RE = re.compile(r"[^\s.]+(?:\.[^\s.]+)*")
# Scopes become Redis keys and channel names, and appear in logs: printable, no
# whitespace, and short.
MAX_SCOPE_LENGTH = 200
_SCOPE_RE = re.compile(r"[^\s\x00-\x1f\x7f]+")


def require_name(value: object, *, name: str) -> str:
    """Return ``value`` if it is a non-empty str (a scope, template or block name)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}: {value!r}.")
    if not value:
        raise ValueError(f"{name} must be a non-empty string.")
    return value


def validate_scope(value: object, *, name: str = "scope") -> str:
    """Return ``value`` if it can name a scope (``doc-42``, ``thread:7``)."""
    scope = require_name(value, name=name)
    if len(scope) > MAX_SCOPE_LENGTH:
        raise ValueError(
            f"{name} is {len(scope)} characters long; at most {MAX_SCOPE_LENGTH} are "
            f"allowed: {scope[:40]!r}..."
        )
    if not _SCOPE_RE.fullmatch(scope):
        raise ValueError(
            f"{name} {scope!r} contains whitespace or control characters; use "
            f"printable characters such as 'doc-42'."
        )
    return scope


def validate_path(path: object, *, name: str = "path") -> str:
    """Return ``path`` if it is a dotted context path, else raise a precise error."""
    if not isinstance(path, str):
        raise TypeError(
            f"{name} must be a str such as 'doc.title', got {type(path).__name__}: {path!r}."
        )
    if not _PATH_RE.fullmatch(path):
        raise ValueError(
            f"{name} {path!r} is not a dotted context path such as 'doc.title' "
            f"(non-empty segments, no whitespace)."
        )
    return path


def freeze_strings(value: object, *, name: str) -> frozenset[str]:
    """Freeze a collection of non-empty strings, refusing a bare ``str``."""
    # A bare str is iterable, so without this check "doc.title" would silently
    # become a set of single characters.
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be a collection of strings, not a single "
            f"{type(value).__name__}: {value!r}. Wrap it, e.g. {{{value!r}}}."
        )
    if not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a collection of strings, got {type(value).__name__}: {value!r}."
        )
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str):
            hint = " User ids are compared as strings: use str(user.pk)."
            raise TypeError(
                f"{name} must contain only strings, got {item!r} "
                f"({type(item).__name__}).{hint if name == 'audience' else ''}"
            )
        if not item:
            raise ValueError(f"{name} must not contain an empty string.")
    return items


def freeze_paths(value: object, *, name: str = "paths") -> frozenset[str]:
    """Freeze a collection of dotted context paths, validating each."""
    paths = freeze_strings(value, name=name)
    for path in paths:
        validate_path(path, name=f"{name} item")
    return paths


def is_related(a: str, b: str) -> bool:
    """True when one path is the other or lies under it (``doc`` and ``doc.title``)."""
    if len(a) > len(b):
        a, b = b, a
    return b == a or b.startswith(a + ".")
