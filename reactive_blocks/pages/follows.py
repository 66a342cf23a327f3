"""What a page follows: derived from the tracked data its view put in the context.

An instance of a tracked model follows its instance scope (every change of the row
is emitted there, whatever ``track(scope=...)`` says, and so are changes of rows
pointing at it); a queryset, or a list of instances,
follows its model's scope (a row created, saved or deleted may change it). A
paginator page or a form bound to an instance counts for what it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.paginator import Page
from django.db import models
from django.forms import BaseModelForm

from reactive_blocks.paths import validate_scope
from reactive_blocks.tracking.page_scopes import instance_scope, model_scope
from reactive_blocks.tracking.registry import tracker_for

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_FOLLOWED", "follows"]

# A page following more than this follows the models' scopes instead of rows'.
MAX_FOLLOWED = 32
# How far into lists and tuples a value is looked at.
MAX_ITEMS = 1000


def follows(context: Mapping[str, Any]) -> list[str]:
    """The bus scopes a page with ``context`` follows, in a stable order."""
    rows: dict[str, str] = {}  # a row's scope: its model's scope
    tables: dict[str, None] = {}
    for value in context.values():
        _collect(value, rows, tables, depth=0)
    if len(rows) + len(tables) > MAX_FOLLOWED:
        # Too many rows to sign into the stream's URL: follow their models.
        return sorted(tables | dict.fromkeys(rows.values()))
    return [*rows, *tables]


def _collect(
    value: Any, rows: dict[str, str], tables: dict[str, None], depth: int
) -> None:
    if isinstance(value, models.Model):
        tracker = tracker_for(type(value))
        if tracker is not None and value.pk is not None:
            table = model_scope(tracker.model)
            row = instance_scope(tracker.model, value.pk)
            if _usable(row):
                rows[row] = table
            else:
                tables[table] = None  # a pk no scope can name (spaces, too long)
        return
    if isinstance(value, models.QuerySet):
        tracker = tracker_for(value.model)
        if tracker is not None:
            tables[model_scope(tracker.model)] = None
        return
    if isinstance(value, list | tuple):
        models_seen = {
            type(v) for v in value[:MAX_ITEMS] if isinstance(v, models.Model)
        }
        for model in models_seen:
            tracker = tracker_for(model)
            if tracker is not None:
                tables[model_scope(tracker.model)] = None
        return
    if depth >= 1:
        return
    # A paginator's page holds a queryset; a ModelForm its instance.
    for attribute in ("object_list", "instance"):
        inner = getattr(value, attribute, None) if _plain_holder(value) else None
        if inner is not None:
            _collect(inner, rows, tables, depth + 1)


def _usable(scope: str) -> bool:
    try:
        validate_scope(scope)
    except ValueError:
        return False
    return True


def _plain_holder(value: Any) -> bool:
    return isinstance(value, Page | BaseModelForm)
