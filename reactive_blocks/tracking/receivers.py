"""Signal receivers that turn tracked models' changes into emitted paths.

Which fields changed is decided against the database: before an update the stored row
is read (one query per save, its SQL compiled once per model) and compared, after the
save, with what was saved. That stays right after ``refresh_from_db()``, for deferred
fields, for ``auto_now`` fields, and when another process changed the row meanwhile;
the stored row also gives the scopes the instance leaves when a scope field changes.
A save with ``update_fields`` emits exactly those fields, without the query.

Every receiver logs what goes wrong and returns: a save never fails because of its
notification (guarantee 2).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
)

from reactive_blocks.tracking.registry import (
    parent_scope,
    tracker_for,
    tracker_scopes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from reactive_blocks.tracking.registry import Tracker

__all__ = ["connect"]

logger = logging.getLogger(__name__)

_STORED = "_reactive_stored_row"
_RELATED = "_reactive_related_on_delete"
_CLEARED = "_reactive_cleared_pks"


def connect() -> None:
    """Connect the receivers (idempotent: each has a dispatch_uid)."""
    for signal, receiver in (
        (pre_save, _before_save),
        (post_save, _after_save),
        (pre_delete, _before_delete),
        (post_delete, _after_delete),
        (m2m_changed, _m2m_changed),
    ):
        signal.connect(
            receiver, dispatch_uid=f"reactive_blocks:{receiver.__name__}", weak=False
        )


def _never_raises(receiver: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(receiver)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            logger.exception(
                "reactive_blocks could not track %s; nothing emitted.",
                kwargs.get("instance"),
            )

    return guarded


# Saves ------------------------------------------------------------------------------


@_never_raises
def _before_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    instance.__dict__.pop(_STORED, None)  # left by a save that failed
    tracker = tracker_for(sender)
    if tracker is None or kwargs.get("raw") or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not _derived_from_deferral(
        instance, update_fields
    ):
        return  # the caller named the fields: exactly those are emitted
    stored = _stored_row(tracker, kwargs.get("using"), instance.pk)
    if stored is not None:
        instance.__dict__[_STORED] = stored


_row_queries = threading.local()  # per thread: a RowPlan by tracker and alias


class RowPlan(NamedTuple):
    """What a tracked model's saves need, worked out once per tracker and alias."""

    sql: str | None  # the SELECT of one row by primary key (None: use the ORM)
    compiler: Any
    converters: Any
    names: list[str]  # the row's columns (attnames)
    tracked: tuple[tuple[str, str, models.Field[Any, Any]], ...]  # emitted fields
    moving: frozenset[str] | None  # fields the scope reads (None: it may read any)


class Stored:
    """The row as the database has it: its values, and an instance made of them
    only if the scope callable needs one."""

    __slots__ = ("_instance", "alias", "model", "names", "plan", "values")

    def __init__(
        self, model: type[models.Model], alias: str, plan: RowPlan, row: Any
    ) -> None:
        self.model, self.alias, self.plan, self.names = model, alias, plan, plan.names
        self.values = dict(zip(plan.names, row, strict=True))
        self._instance: models.Model | None = None

    def instance(self) -> models.Model:
        if self._instance is None:
            values = [self.values[name] for name in self.names]
            self._instance = self.model.from_db(self.alias, self.names, values)
        return self._instance


def _plan(tracker: Tracker, alias: str, pk: Any) -> RowPlan:
    queries: dict[tuple[Tracker, str], RowPlan] | None
    queries = getattr(_row_queries, "by_tracker", None)
    if queries is None:
        queries = _row_queries.by_tracker = {}
    model = tracker.model
    plan = queries.get((tracker, alias))
    if plan is not None:
        return plan
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    tracked = tuple(
        (f.name, f.attname, f) for f in fields if f.name in tracker.compared
    )
    moving = None
    if isinstance(tracker.scope, str):
        uses = set(tracker.scope_fields())
        moving = frozenset(n for n, a, _ in tracked if n in uses or a in uses)
    compiler = (
        model._base_manager.using(alias).filter(pk=pk).query.get_compiler(using=alias)
    )
    sql, params = compiler.as_sql()
    if len(params) != 1 or len(compiler.select) != len(names):
        sql = None  # not one plain SELECT by key: ask the ORM each time
    converters = compiler.get_converters([col for col, _, _ in compiler.select])
    plan = queries[(tracker, alias)] = RowPlan(
        sql, compiler, converters, names, tracked, moving
    )
    return plan


def _stored_row(tracker: Tracker, using: str | None, pk: Any) -> Stored | None:
    """The row as the database has it now, read with SQL compiled once per model.

    The same as ``model._base_manager.filter(pk=pk).first()``, without building
    the query each time: a tracked save must not cost much more than a save.
    """
    alias = using or DEFAULT_DB_ALIAS
    model = tracker.model
    plan = _plan(tracker, alias, pk)
    if plan.sql is None:
        found = model._base_manager.using(alias).filter(pk=pk).first()
        if found is None:
            return None
        return Stored(model, alias, plan, [getattr(found, n) for n in plan.names])
    connection = connections[alias]
    value = (
        pk
        if type(pk) is int  # an automatic key: nothing to prepare
        else model._meta.pk.get_db_prep_value(pk, connection, prepared=False)
    )
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    if plan.converters:
        row = next(iter(plan.compiler.apply_converters([row], plan.converters)))
    return Stored(model, alias, plan, row)


def _derived_from_deferral(
    instance: models.Model, update_fields: Iterable[str]
) -> bool:
    """Whether Django chose ``update_fields`` itself: the loaded fields of an instance
    with deferred fields. Then they are compared like a plain save."""
    deferred = instance.get_deferred_fields()
    if not deferred:
        return False
    loaded = {
        f.attname
        for f in instance._meta.concrete_fields
        if not f.primary_key and f.attname not in deferred
    }
    return set(update_fields) == loaded


@_never_raises
def _after_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    stored = instance.__dict__.pop(_STORED, None)
    tracker = tracker_for(sender)
    if tracker is None or kwargs.get("raw"):
        return
    using = kwargs.get("using")
    if kwargs.get("created"):
        tracker.emit(instance, {tracker.prefix}, using)
        return
    update_fields = kwargs.get("update_fields")
    left: list[str] = []
    if stored is not None:
        names = _changed(tracker, instance, stored)
        if names and _may_move(tracker, instance, stored, names):
            # The scopes it may have moved out of.
            left = tracker_scopes(tracker, stored.instance())
        # A row moved to another parent leaves the old one's page too.
        left += _old_parents(sender, stored, names)
    elif update_fields is not None:
        by_attname = {f.attname: f.name for f in sender._meta.concrete_fields}
        names = {by_attname.get(name, name) for name in update_fields}
        names &= tracker.compared
    else:
        names = set()
    if names:
        tracker.emit(
            instance,
            tracker.field_paths(names),
            using,
            also=left,
            recheck=tracker.rechecks(names),
        )


def _old_parents(
    model: type[models.Model], stored: Stored, changed: set[str]
) -> list[str]:
    """The scopes of the tracked rows the changed foreign keys pointed at."""
    scopes = []
    for field in model._meta.concrete_fields:
        if field.name in changed and field.attname in stored.values:
            found = parent_scope(field, stored.values[field.attname])
            if found is not None:
                scopes.append(found[0])
    return scopes


def _changed(tracker: Tracker, instance: models.Model, stored: Stored) -> set[str]:
    # Only fields loaded on the instance were saved; deferred ones did not change.
    values, loaded = stored.values, instance.__dict__
    return {
        name
        for name, attname, field in stored.plan.tracked
        if attname in loaded and not _same(field, loaded[attname], values[attname])
    }


def _may_move(
    tracker: Tracker, instance: models.Model, stored: Stored, changed: set[str]
) -> bool:
    """Whether the change may have moved the instance out of some scope."""
    moving = stored.plan.moving
    return moving is None or not moving.isdisjoint(changed)


def _same(field: models.Field[Any, Any], value: Any, stored: Any) -> bool:
    """Equal as the field sees them ("5" and 5 for an IntegerField are)."""
    if value == stored and type(value) is type(stored):
        return True
    try:
        return bool(field.to_python(value) == field.to_python(stored))
    except Exception:
        return bool(value == stored)  # e.g. an F() expression: it changed


# Deletes ----------------------------------------------------------------------------


@_never_raises
def _before_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    # Deleting removes many-to-many rows without m2m_changed: remember, while they
    # still exist, who was related, to tell the other side after the delete.
    related = []
    for field in sender._meta.many_to_many:
        other = _tracker_of(field.related_model)
        if other is not None:
            name = field.remote_field.get_accessor_name() or field.name
            related.append((other, name, list(getattr(instance, field.name).all())))
    for relation in sender._meta.related_objects:
        if relation.many_to_many:
            other = _tracker_of(relation.related_model)
            accessor = relation.get_accessor_name()
            if (
                other is not None
                and accessor
                and relation.field.name in other.m2m_fields
            ):
                related.append(
                    (
                        other,
                        relation.field.name,
                        list(getattr(instance, accessor).all()),
                    )
                )
    if related:
        instance.__dict__[_RELATED] = related


@_never_raises
def _after_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    using = kwargs.get("using")
    tracker = tracker_for(sender)
    if tracker is not None:
        # Gone for everyone: the pages that showed it ask again whether they may.
        tracker.emit(
            instance, {tracker.prefix}, using, recheck=bool(tracker.access_fields)
        )
    for other, name, objects in instance.__dict__.pop(_RELATED, ()):
        for obj in objects:
            other.emit(obj, {f"{other.prefix}.{name}"}, using)


# Many-to-many -------------------------------------------------------------------------


@_never_raises
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
    # The field is declared on the "forward" model; ``reverse`` says which side
    # ``instance`` is on.
    field = _m2m_field(sender, model if reverse else type(instance))
    if field is None:
        return
    forward_name = field.name
    # A symmetrical relation to "self" has no reverse accessor: both sides use the field.
    reverse_name = field.remote_field.get_accessor_name() or forward_name
    if action == "pre_clear":
        # post_clear has no pk_set: remember who was related before.
        manager = getattr(instance, reverse_name if reverse else forward_name)
        instance.__dict__[_CLEARED] = set(manager.values_list("pk", flat=True))
        return
    if action == "post_clear":
        pk_set = instance.__dict__.pop(_CLEARED, set())
    others: list[models.Model] = []
    if pk_set:
        other_model = field.model if reverse else field.related_model
        others = list(other_model._base_manager.using(using).filter(pk__in=pk_set))
    if reverse:
        sides = [
            (field.related_model, reverse_name, [instance], False),
            (field.model, forward_name, others, True),
        ]
    else:
        sides = [
            (field.model, forward_name, [instance], True),
            (field.related_model, reverse_name, others, False),
        ]
    for side_model, name, instances, declaring in sides:
        _notify(side_model, name, instances, using, declaring)


def _notify(
    model: type[models.Model],
    name: str,
    instances: list[models.Model],
    using: str,
    declaring: bool,
) -> None:
    tracker = _tracker_of(model)
    # The declaring side honours fields/exclude; the other side always hears of it.
    if tracker is None or (
        declaring
        and name not in tracker.m2m_fields
        and name not in tracker.access_fields
    ):
        return
    recheck = declaring and name in tracker.access_fields
    for instance in instances:
        tracker.emit(instance, {f"{tracker.prefix}.{name}"}, using, recheck=recheck)


def _tracker_of(model: object) -> Tracker | None:
    # A relation's model is a class once apps are loaded ("self" only before).
    if isinstance(model, type) and issubclass(model, models.Model):
        return tracker_for(model)
    return None


def _m2m_field(through: type[models.Model], model: type[models.Model]) -> Any:
    for field in model._meta.many_to_many:
        if field.remote_field.through is through:
            return field
    return None
