"""``track()``: declare a model live, checked at once; and ``tracked_update()``."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from reactive_blocks.tracking.page_scopes import instance_scope
from reactive_blocks.tracking.receivers import connect
from reactive_blocks.tracking.registry import (
    Scope,
    Tracker,
    register,
    tracker_for,
    tracker_scopes,
    trackers,
)

if TYPE_CHECKING:
    from django.db.models import QuerySet

__all__ = ["track", "tracked_update"]

M = TypeVar("M", bound=type[models.Model])
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@overload
def track(
    model: M,
    *,
    scope: Scope | None = None,
    prefix: str | None = None,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    access_fields: Iterable[str] = (),
) -> M: ...


@overload
def track(
    model: None = None,
    *,
    scope: Scope | None = None,
    prefix: str | None = None,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    access_fields: Iterable[str] = (),
) -> Callable[[M], M]: ...


def track(
    model: M | None = None,
    *,
    scope: Scope | None = None,
    prefix: str | None = None,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    access_fields: Iterable[str] = (),
) -> M | Callable[[M], M]:
    """Emit ChangeEvents for saves, deletes and m2m changes of ``model``.

    ``scope`` is a format string over the instance's fields (``"doc-{pk}"``) or a
    callable returning one scope or a list (default: the instance scope,
    ``"docs.document:{pk}"``); ``prefix`` is the path the instance has in
    templates (default: the model name, ``"document"``); ``fields``/``exclude`` choose the fields emitted;
    a change of one of ``access_fields`` (``["private"]``) may take access away, so
    every stream of the scope asks ``has_permission()`` again before it renders
    that change (deletes too, when there are access fields). Works as a class
    decorator too. Bad configuration raises ImproperlyConfigured at once.
    """
    if model is None:
        return lambda cls: track(
            cls,
            scope=scope,
            prefix=prefix,
            fields=fields,
            exclude=exclude,
            access_fields=access_fields,
        )
    candidate: object = model
    if not (isinstance(candidate, type) and issubclass(candidate, models.Model)):
        raise TypeError(f"track() takes a model class, got {model!r}.")
    tracker = _build(model, scope, prefix, fields, exclude, access_fields)
    existing = trackers().get(model)
    if existing is not None:
        if existing.options() != tracker.options():
            raise ImproperlyConfigured(
                f"{model.__name__} is already tracked with scope={existing.scope!r}, "
                f"prefix={existing.prefix!r}; track it once, or with the same options."
            )
        return model
    connect()
    register(model, tracker)
    return model


def _build(
    model: type[models.Model],
    scope: Scope | None,
    prefix: str | None,
    fields: Iterable[str] | None,
    exclude: Iterable[str],
    access_fields: Iterable[str] = (),
) -> Tracker:
    label = model.__name__
    if scope is None:
        scope = instance_scope(model, "{pk}")
    default_prefix = prefix is None
    if prefix is None:
        prefix = model._meta.model_name or label.lower()
    given: object = prefix
    if not isinstance(given, str) or not _PREFIX.fullmatch(given):
        raise ImproperlyConfigured(
            f"track({label}): prefix {prefix!r} is not a dotted identifier such as "
            f"'doc' or 'doc.comments'."
        )
    concrete = {f.name for f in model._meta.concrete_fields if not f.primary_key}
    many = {f.name for f in model._meta.many_to_many}
    known = concrete | many
    options = (
        ("fields", fields or ()),
        ("exclude", exclude),
        ("access_fields", access_fields),
    )
    for option, names in options:
        if isinstance(names, str):
            raise ImproperlyConfigured(
                f"track({label}): {option} must be a list of field names, not {names!r}."
            )
        unknown = sorted(set(names) - known)
        if unknown:
            raise ImproperlyConfigured(
                f"track({label}): {option} names unknown field(s) "
                f"{', '.join(map(repr, unknown))}; fields are {', '.join(sorted(known))}."
            )
    chosen = set(known if fields is None else fields) - set(exclude)
    if isinstance(scope, str):
        _check_format(label, scope, model)
    elif callable(scope):
        _probe(label, scope, model)
    else:
        raise ImproperlyConfigured(
            f"track({label}): scope must be a format string such as 'doc-{{pk}}' or a "
            f"callable, got {scope!r}."
        )
    return Tracker(
        model,
        scope,
        prefix,
        frozenset(chosen - many),
        frozenset(chosen & many),
        chosen=fields is not None,
        access_fields=frozenset(access_fields),
        default_prefix=default_prefix,
    )


def _check_format(label: str, scope: str, model: type[models.Model]) -> None:
    try:
        parsed = list(string.Formatter().parse(scope))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"track({label}): scope {scope!r} is not a valid format string: {exc}."
        ) from exc
    if not any(name for _, name, _, _ in parsed):
        raise ImproperlyConfigured(
            f"track({label}): scope {scope!r} names no field, so every {label} would "
            f"share one scope; use e.g. '{scope}{{pk}}'."
        )
    attributes = {"pk"} | {f.attname for f in model._meta.concrete_fields}
    attributes |= {f.name for f in model._meta.concrete_fields}
    for _, name, spec, conversion in parsed:
        if not name:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in attributes:
            raise ImproperlyConfigured(
                f"track({label}): scope {scope!r} uses {{{root}}}, which is not a field "
                f"of {label}; use pk or one of {', '.join(sorted(attributes - {'pk'}))}."
            )
        if conversion not in (None, "s", "r", "a") or spec:
            raise ImproperlyConfigured(
                f"track({label}): scope {scope!r} formats {{{name}}} with "
                f"{'!' + conversion if conversion else ':' + (spec or '')}; scopes take plain "
                f"fields only (use a callable for anything else)."
            )


def _probe(label: str, scope: Callable[[Any], Any], model: type[models.Model]) -> None:
    """Call a scope callable on an unsaved instance: a wrong return type shows now."""
    try:
        result = scope(model())
    except Exception:
        return  # it needs real data (a relation, say): checked on each save instead
    scopes = [result] if isinstance(result, str) else result
    if not isinstance(scopes, Iterable) or not all(isinstance(s, str) for s in scopes):
        raise ImproperlyConfigured(
            f"track({label}): the scope callable returned {result!r}; it must return a "
            f"str or a list of str."
        )


def tracked_update(queryset: QuerySet[Any], **values: Any) -> int:
    """``queryset.update(**values)`` that also emits, as saves would.

    ``QuerySet.update()`` sends no signals; this reads the affected rows' scopes,
    updates, and emits ``<prefix>.<field>`` for each, after commit.
    """
    tracker = tracker_for(queryset.model)
    if tracker is None:
        raise ImproperlyConfigured(
            f"tracked_update() needs a tracked model; {queryset.model.__name__} is not "
            f"tracked (reactive_blocks.track())."
        )
    by_attname = {f.attname: f.name for f in queryset.model._meta.concrete_fields}
    names = {by_attname.get(name, name) for name in values} & tracker.compared
    before = {obj.pk: tracker_scopes(tracker, obj) for obj in queryset}
    count = queryset.update(**values)
    if names:
        for obj in queryset.model._base_manager.using(queryset.db).filter(
            pk__in=before
        ):
            tracker.emit(
                obj,
                tracker.field_paths(names),
                queryset.db,
                also=before[obj.pk],
                recheck=tracker.rechecks(names),
            )
    return count
