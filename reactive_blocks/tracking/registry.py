"""Which models are tracked, and how: the ``Tracker`` each ``track()`` call records.

The signal receivers (``receivers.py``) look a model up here and turn its saves,
deletes and many-to-many changes into ``<prefix>.<field>`` paths of its scopes.
"""

from __future__ import annotations

import functools
import logging
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reactive_blocks.origin import current_origin
from reactive_blocks.tracking.commit import emit_on_commit
from reactive_blocks.tracking.page_scopes import instance_scope, model_scope

if TYPE_CHECKING:
    from django.db import models

__all__ = [
    "Scope",
    "Tracker",
    "is_page_scope_only",
    "parent_scope",
    "register",
    "tracker_for",
    "tracker_scopes",
    "trackers",
    "untrack",
]

logger = logging.getLogger(__name__)

Scope = str | Callable[[Any], str | Iterable[str]]


@dataclass(frozen=True, eq=False)
class Tracker:
    """How one model's changes become paths of scopes."""

    model: type[models.Model]
    scope: Scope
    prefix: str
    fields: frozenset[str]  # concrete field names whose changes are emitted
    m2m_fields: frozenset[str]  # many-to-many fields declared on the model, emitted
    chosen: bool = False  # the fields were listed with fields=[...]
    # Fields whose change may take access away: their events carry ``recheck``.
    # Compared and emitted even when ``fields``/``exclude`` leave them out.
    access_fields: frozenset[str] = frozenset()
    # prefix= was left out: live pages follow the model, no template path is named.
    default_prefix: bool = False

    def options(self) -> tuple[object, ...]:
        return (
            self.scope,
            self.prefix,
            self.fields,
            self.m2m_fields,
            self.access_fields,
        )

    @property
    def compared(self) -> frozenset[str]:
        """The concrete fields whose changes a save looks for."""
        return self.fields | (self.access_fields - self.m2m_fields)

    def rechecks(self, names: Iterable[str]) -> bool:
        """Whether a change of these fields may take access away."""
        return not self.access_fields.isdisjoint(names)

    def declared_paths(self) -> set[str]:
        """What the reactive_paths check expects some block to read.

        Listed fields (``fields=[...]``) were chosen for pages, so each must be
        read; a model tracked whole usually has fields no page shows, so only its
        prefix is expected to be read.
        """
        if self.chosen:
            return self.field_paths(self.fields | self.m2m_fields)
        return set() if self.default_prefix else {self.prefix}

    def scopes_of(self, instance: models.Model) -> list[str]:
        """The scopes an instance belongs to (a format string or a callable)."""
        if isinstance(self.scope, str):
            values = {
                name: getattr(instance, name) for name in _format_names(self.scope)
            }
            result: object = self.scope.format(**values)
        else:
            result = self.scope(instance)
        scopes: list[object] = (
            [result]
            if isinstance(result, str) or not isinstance(result, Iterable)
            else list(result)
        )
        if not all(isinstance(s, str) and s for s in scopes):
            raise TypeError(
                f"The scope of tracked model {self.model.__name__} came out as "
                f"{result!r}; it must be a non-empty str or a list of them."
            )
        return [str(s) for s in scopes]

    def scope_fields(self) -> list[str]:
        """The fields a format-string scope reads (none for a callable)."""
        return _format_names(self.scope) if isinstance(self.scope, str) else []

    def emitted_paths(self) -> set[str]:
        """Every path this tracker emits for its own model's changes."""
        names = self.fields | self.m2m_fields
        return {self.prefix} | {f"{self.prefix}.{name}" for name in names}

    def emit(
        self,
        instance: models.Model,
        paths: Iterable[str],
        using: str | None,
        also: Iterable[str] = (),
        *,
        recheck: bool = False,
    ) -> None:
        """Emit ``paths`` to the instance's scopes (and the scopes in ``also``);
        ``recheck``: the change may take access away."""
        try:
            scopes = dict.fromkeys([*self.scopes_of(instance), *also])
        except Exception:
            # Guarantee 2: a save never fails because of its notification.
            logger.exception(
                "Could not compute the scope of %r; nothing emitted.", instance
            )
            return
        origin = current_origin()
        frozen = frozenset(paths)
        # The row that changed, for keyed lists (rows/render.py).
        rows = (
            None
            if instance.pk is None
            else frozenset({instance_scope(self.model, instance.pk)})
        )
        for scope, scope_paths in [
            *((s, frozen) for s in scopes),
            *self._page_scopes(instance, frozen, scopes),
        ]:
            emit_on_commit(
                scope,
                scope_paths,
                origin=origin,
                using=using,
                recheck=recheck,
                rows=rows,
            )

    def _page_scopes(
        self, instance: models.Model, paths: frozenset[str], scopes: dict[str, None]
    ) -> list[tuple[str, frozenset[str]]]:
        """The scopes live pages follow (``page_scopes.py``): this model's, this row's,
        and the rows of tracked models its foreign keys point at."""
        derived = [(model_scope(self.model), paths)]
        if instance.pk is not None:
            derived.append((instance_scope(self.model, instance.pk), paths))
        for field in instance._meta.concrete_fields:
            parent = _parent_scope(field, instance)
            if parent is not None:
                derived.append(parent)
        return [(scope, p) for scope, p in derived if scope not in scopes]

    def field_paths(self, names: Iterable[str]) -> set[str]:
        return {f"{self.prefix}.{name}" for name in names}


_trackers: dict[type[models.Model], Tracker] = {}
_resolved: dict[type[models.Model], Tracker | None] = {}


def trackers() -> dict[type[models.Model], Tracker]:
    """The tracked models and how (a copy)."""
    return dict(_trackers)


def tracker_for(model: type[models.Model]) -> Tracker | None:
    """The tracker of ``model`` or of the nearest tracked parent (proxies, children)."""
    if model not in _resolved:
        _resolved[model] = next(
            (_trackers[c] for c in model.__mro__ if c in _trackers), None
        )
    return _resolved[model]


def register(model: type[models.Model], tracker: Tracker) -> None:
    """Record ``tracker`` for ``model`` (``track()`` validates it first)."""
    _trackers[model] = tracker
    _resolved.clear()


def untrack(model: type[models.Model]) -> None:
    """Stop tracking ``model`` (for tests)."""
    _trackers.pop(model, None)
    _resolved.clear()


def _parent_scope(
    field: Any, instance: models.Model
) -> tuple[str, frozenset[str]] | None:
    """The scope of the tracked row a foreign key of ``instance`` points at, and
    the path there (``doc.comments``), if the key is set and points at a pk."""
    return parent_scope(field, getattr(instance, field.attname, None))


def parent_scope(field: Any, value: Any) -> tuple[str, frozenset[str]] | None:
    """The instance scope of the tracked row whose pk ``value`` a foreign key
    ``field`` holds, and the path there."""
    if not (field.many_to_one or field.one_to_one) or field.remote_field is None:
        return None
    parent = tracker_for(field.related_model)
    accessor = field.remote_field.get_accessor_name()
    target = getattr(field, "target_field", None)
    if parent is None or accessor is None or value is None:
        return None
    if target is None or not target.primary_key:
        return None  # to_field: the value is not the row's pk
    path = f"{parent.prefix}.{accessor}"
    return instance_scope(parent.model, value), frozenset({path})


@functools.lru_cache(maxsize=256)
def _format_names(template: str) -> list[str]:
    parsed = string.Formatter().parse(template)
    return [re.split(r"[.\[]", name, maxsplit=1)[0] for _, name, _, _ in parsed if name]


def is_page_scope_only(scope: str) -> bool:
    """Whether ``scope`` is a scope no ``track(scope=...)`` asked for: a model's, or
    the rows' of a model tracked with a scope of its own."""
    label, _, pk = scope.partition(":")
    for model, tracker in trackers().items():
        if model_scope(model) != label:
            continue
        return not pk or tracker.scope != instance_scope(model, "{pk}")
    return False


def tracker_scopes(tracker: Tracker, instance: models.Model) -> list[str]:
    """The instance's scopes, or none if they cannot be computed (logged)."""
    try:
        return tracker.scopes_of(instance)
    except Exception:
        logger.exception("Could not compute the scope of %r.", instance)
        return []
