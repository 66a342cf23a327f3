"""Model tracking: saves, deletes and many-to-many changes emit ChangeEvents.

``track(Document, scope="doc-{pk}", prefix="doc")`` connects signal receivers that
work out which fields really changed and emit ``doc.<field>`` paths for the
document's scope once the transaction commits.

Which fields changed is decided against the database: before an update, the stored
row is read (one query per save) and compared with what is being saved. That also
holds after ``refresh_from_db()`` or when another process changed the row meanwhile.
A save with ``update_fields`` emits exactly those fields, without the query.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from reactive_blocks.commit import emit_on_commit
from reactive_blocks.origin import current_origin

if TYPE_CHECKING:
    from django.db.models import QuerySet

__all__ = ["Tracker", "track", "tracked_update", "trackers", "untrack"]

logger = logging.getLogger("reactive_blocks.tracking")

M = TypeVar("M", bound=type[models.Model])
Scope = str | Callable[[Any], str | Iterable[str]]
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CHANGED = "_reactive_changed_fields"
_CLEARED = "_reactive_cleared_pks"


@dataclass(frozen=True, eq=False)
class Tracker:
    """How one model's changes become paths of scopes."""

    model: type[models.Model]
    scope: Scope
    prefix: str
    fields: frozenset[str]  # concrete field names whose changes are emitted
    m2m_fields: frozenset[str]

    def options(self) -> tuple[object, ...]:
        return (self.scope, self.prefix, self.fields, self.m2m_fields)

    def scopes_of(self, instance: models.Model) -> list[str]:
        """The scopes an instance belongs to (a format string or a callable)."""
        if isinstance(self.scope, str):
            values = {
                name: getattr(instance, name) for name in _format_names(self.scope)
            }
            return [self.scope.format(**values)]
        result: object = self.scope(instance)
        scopes: list[object] = (
            [result]
            if isinstance(result, str) or not isinstance(result, Iterable)
            else list(result)
        )
        bad = [s for s in scopes if not isinstance(s, str) or not s]
        if bad:
            raise TypeError(
                f"The scope callable of tracked model {self.model.__name__} returned "
                f"{result!r}; it must return a non-empty str or a list of them."
            )
        return [str(s) for s in scopes]

    def emitted_paths(self) -> set[str]:
        """Every path this tracker can emit (for the reactive_paths check)."""
        return {self.prefix} | {
            f"{self.prefix}.{name}" for name in self.fields | self.m2m_fields
        }

    def emit(
        self, instance: models.Model, names: Iterable[str], using: str | None
    ) -> None:
        """Emit ``<prefix>.<name>`` for each field name, after commit."""
        paths = frozenset(f"{self.prefix}.{name}" for name in names)
        self.emit_paths(instance, paths or frozenset({self.prefix}), using)

    def emit_whole(self, instance: models.Model, using: str | None) -> None:
        """Emit ``<prefix>``: the whole instance changed (created or deleted)."""
        self.emit_paths(instance, frozenset({self.prefix}), using)

    def emit_paths(
        self, instance: models.Model, paths: frozenset[str], using: str | None
    ) -> None:
        try:
            scopes = self.scopes_of(instance)
        except Exception:
            # Guarantee 2: a save never fails because of its notification.
            logger.exception(
                "Could not compute the scope of %r; nothing emitted.", instance
            )
            return
        origin = current_origin()
        for scope in scopes:
            emit_on_commit(scope, paths, origin=origin, using=using)


_trackers: dict[type[models.Model], Tracker] = {}


def trackers() -> dict[type[models.Model], Tracker]:
    """The tracked models and how (a copy)."""
    return dict(_trackers)


@overload
def track(
    model: M,
    *,
    scope: Scope,
    prefix: str,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> M: ...


@overload
def track(
    model: None = None,
    *,
    scope: Scope,
    prefix: str,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> Callable[[M], M]: ...


def track(
    model: M | None = None,
    *,
    scope: Scope,
    prefix: str,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> M | Callable[[M], M]:
    """Emit ChangeEvents for saves, deletes and m2m changes of ``model``.

    ``scope`` is a format string over the instance's fields (``"doc-{pk}"``) or a
    callable returning one scope or a list; ``prefix`` is the path the instance has
    in templates (``"doc"``); ``fields``/``exclude`` choose the fields emitted. Works
    as a class decorator too. Bad configuration raises ImproperlyConfigured at once.
    """
    if model is None:
        return lambda cls: track(
            cls, scope=scope, prefix=prefix, fields=fields, exclude=exclude
        )
    candidate: object = model
    if not (isinstance(candidate, type) and issubclass(candidate, models.Model)):
        raise TypeError(f"track() takes a model class, got {model!r}.")
    tracker = _build(model, scope, prefix, fields, exclude)
    existing = _trackers.get(model)
    if existing is not None:
        if existing.options() != tracker.options():
            raise ImproperlyConfigured(
                f"{model.__name__} is already tracked with scope={existing.scope!r}, "
                f"prefix={existing.prefix!r}; track it once, or with the same options."
            )
        return model
    _trackers[model] = tracker
    uid = f"reactive_blocks:{model._meta.label}"
    pre_save.connect(_before_save, sender=model, dispatch_uid=uid, weak=False)
    post_save.connect(_after_save, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_after_delete, sender=model, dispatch_uid=uid, weak=False)
    m2m_changed.connect(_m2m_changed, dispatch_uid="reactive_blocks:m2m", weak=False)
    return model


def untrack(model: type[models.Model]) -> None:
    """Stop tracking ``model`` (for tests)."""
    if _trackers.pop(model, None) is None:
        return
    uid = f"reactive_blocks:{model._meta.label}"
    pre_save.disconnect(sender=model, dispatch_uid=uid)
    post_save.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)


def _build(
    model: type[models.Model],
    scope: Scope,
    prefix: str,
    fields: Iterable[str] | None,
    exclude: Iterable[str],
) -> Tracker:
    label = model.__name__
    given: object = prefix
    if not isinstance(given, str) or not _PREFIX.fullmatch(given):
        raise ImproperlyConfigured(
            f"track({label}): prefix {prefix!r} is not a dotted identifier such as "
            f"'doc' or 'doc.comments'."
        )
    concrete = {f.name: f for f in model._meta.concrete_fields if not f.primary_key}
    many = {f.name for f in model._meta.many_to_many}
    known = set(concrete) | many
    for option, names in (("fields", fields or ()), ("exclude", exclude)):
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
        attributes = (
            {"pk"} | {f.attname for f in model._meta.concrete_fields} | set(concrete)
        )
        for name in _format_names(scope):
            if name not in attributes:
                raise ImproperlyConfigured(
                    f"track({label}): scope {scope!r} uses {{{name}}}, which is not a "
                    f"field of {label}; use pk or one of "
                    f"{', '.join(sorted(attributes - {'pk'}))}."
                )
    elif callable(scope):
        _probe(label, scope, model)
    else:
        raise ImproperlyConfigured(
            f"track({label}): scope must be a format string such as 'doc-{{pk}}' or a "
            f"callable, got {scope!r}."
        )
    return Tracker(
        model, scope, prefix, frozenset(chosen - many), frozenset(chosen & many)
    )


def _format_names(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"scope {template!r} is not a valid format string: {exc}"
        ) from exc
    return [
        re.split(r"[.\[]", name, maxsplit=1)[0]
        for _, name, _, _ in parsed
        if name is not None
    ]


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


# Signal receivers ---------------------------------------------------------------------


def _before_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    tracker = _trackers.get(sender)
    if tracker is None or kwargs.get("raw"):
        return
    if instance._state.adding or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not _derived_from_deferral(
        instance, update_fields
    ):
        return  # the caller named the fields: exactly those are emitted
    try:
        setattr(
            instance, _CHANGED, _changed_fields(tracker, instance, kwargs.get("using"))
        )
    except Exception:
        logger.exception("Could not compare %r with the database.", instance)
        setattr(instance, _CHANGED, set(tracker.fields))


def _derived_from_deferral(
    instance: models.Model, update_fields: Iterable[str]
) -> bool:
    """Whether Django chose ``update_fields`` itself: the fields loaded on an instance
    with deferred fields. Then the saved fields are compared like a plain save."""
    deferred = instance.get_deferred_fields()
    if not deferred:
        return False
    loaded = {
        f.attname
        for f in instance._meta.concrete_fields
        if not f.primary_key and f.attname not in deferred
    }
    return set(update_fields) == loaded


def _changed_fields(
    tracker: Tracker, instance: models.Model, using: str | None
) -> set[str]:
    # Only fields loaded on the instance are saved; deferred ones cannot change.
    loaded = {
        f.name: f.attname
        for f in tracker.model._meta.concrete_fields
        if f.name in tracker.fields and f.attname in instance.__dict__
    }
    if not loaded:
        return set()
    stored = (
        tracker.model._base_manager.using(using)
        .filter(pk=instance.pk)
        .values(*loaded.values())
        .first()
    )
    if stored is None:
        return set(loaded)  # the row is gone: everything it holds is new
    fields = {f.attname: f for f in tracker.model._meta.concrete_fields}
    return {
        name
        for name, attname in loaded.items()
        if not _same(fields[attname], getattr(instance, attname), stored[attname])
    }


def _same(field: models.Field[Any, Any], value: Any, stored: Any) -> bool:
    """Equal as the field sees them ("5" and 5 for an IntegerField are)."""
    try:
        return bool(field.to_python(value) == field.to_python(stored))
    except Exception:
        return bool(value == stored)


def _after_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    tracker = _trackers.get(sender)
    if tracker is None or kwargs.get("raw"):
        return
    using = kwargs.get("using")
    if kwargs.get("created"):
        tracker.emit_whole(instance, using)
        return
    update_fields = kwargs.get("update_fields")
    if hasattr(instance, _CHANGED):
        names = getattr(instance, _CHANGED)
        delattr(instance, _CHANGED)
    elif update_fields is not None:
        attnames = {f.attname: f.name for f in sender._meta.concrete_fields}
        names = {attnames.get(name, name) for name in update_fields} & tracker.fields
    else:
        names = set()
    if names:
        tracker.emit(instance, sorted(names), using)


def _after_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    tracker = _trackers.get(sender)
    if tracker is not None:
        tracker.emit_whole(instance, kwargs.get("using"))


def _m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    if action not in {"pre_clear", "post_add", "post_remove", "post_clear"}:
        return
    try:
        # The field is declared on the "forward" model; ``reverse`` says which side
        # ``instance`` is on.
        field = _m2m_field(sender, model if reverse else type(instance))
        if field is None:
            return
        forward_name, reverse_name = field.name, field.remote_field.get_accessor_name()
        if action == "pre_clear":
            # post_clear has no pk_set: remember who was related before.
            manager = getattr(instance, reverse_name if reverse else forward_name)
            setattr(instance, _CLEARED, set(manager.values_list("pk", flat=True)))
            return
        if action == "post_clear":
            pk_set = getattr(instance, _CLEARED, set())
        if reverse:
            here, there = (
                (field.related_model, reverse_name),
                (field.model, forward_name),
            )
        else:
            here, there = (
                (field.model, forward_name),
                (field.related_model, reverse_name),
            )
        _emit_relation(here[0], here[1], [instance], using)
        if pk_set:
            others = list(there[0]._base_manager.using(using).filter(pk__in=pk_set))
            _emit_relation(there[0], there[1], others, using)
    except Exception:
        logger.exception("Could not emit the m2m change %s of %r.", action, instance)


def _emit_relation(
    model: type[models.Model],
    name: str | None,
    instances: list[models.Model],
    using: str,
) -> None:
    tracker = _trackers.get(model)
    if tracker is None or not name:
        return
    for instance in instances:
        tracker.emit_paths(instance, frozenset({f"{tracker.prefix}.{name}"}), using)


def _m2m_field(through: type[models.Model], model: type[models.Model]) -> Any:
    for field in model._meta.many_to_many:
        if field.remote_field.through is through:
            return field
    return None


def tracked_update(queryset: QuerySet[Any], **values: Any) -> int:
    """``queryset.update(**values)`` that also emits, as saves would.

    ``QuerySet.update()`` sends no signals; this reads the affected rows' scopes,
    updates, and emits ``<prefix>.<field>`` for each, after commit.
    """
    tracker = _trackers.get(queryset.model)
    if tracker is None:
        raise ImproperlyConfigured(
            f"tracked_update() needs a tracked model; {queryset.model.__name__} is not "
            f"tracked (reactive_blocks.track())."
        )
    instances = list(queryset)
    count = queryset.update(**values)
    names = sorted(set(values) & tracker.fields)
    for instance in instances:
        for name, value in values.items():
            setattr(instance, name, value)
        if names:
            tracker.emit(instance, names, queryset.db)
    return count
