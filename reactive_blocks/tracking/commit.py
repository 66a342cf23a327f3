"""Emit changes after the transaction commits, one event per scope per transaction.

Each change registers a ``transaction.on_commit`` callback, so Django itself drops the
changes of a rolled-back transaction or savepoint. The callbacks of one transaction
share a batch; the last one of them to run emits the merged paths. "Last" is known
without touching Django's internals: the batch holds only weak references to its
callbacks, and a callback that Django discarded on rollback is gone, while those still
waiting to run are held by Django's commit loop (CPython frees a discarded callback at
once). Only callbacks registered later than the running one count, since Django runs
them in registration order.

Another app's callback that raises stops Django's commit loop, and the callbacks
after it never run although their data is committed. Those are freed unrun too,
but after a commit rather than a rollback: their changes are sent then, without
waiting for the thread's next transaction. Which of the two it was is read from
the batch's own connection (it may be freed in another thread), whose commit-hooks
flag stays up from the commit until every hook ran; a flag already up when the
batch began is left from an earlier failure and tells nothing, and then the change
is sent (a spurious re-render is harmless, a lost change is not).
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, transaction

from reactive_blocks.events import ChangeEvent
from reactive_blocks.origin import current_origin
from reactive_blocks.paths import freeze_paths, freeze_strings, require_name
from reactive_blocks.runtime import get_bus

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["emit", "emit_on_commit", "new_batch"]

logger = logging.getLogger(__name__)

_UNSET = object()
Key = tuple[str, str | None, frozenset[str] | None]  # scope, origin, audience


@dataclass(eq=False)
class _Batch:
    """The changes of one transaction on one database, merged per key."""

    using: str = DEFAULT_DB_ALIAS
    # The connection of the thread that made the changes, and whether its
    # commit-hooks flag was already up (left by an earlier failure) at the start.
    connection: Any = None
    stale_flag: bool = False
    paths: dict[Key, set[str]] = field(default_factory=dict)
    # The rows each key's changes name (None: one of them did not say).
    rows: dict[Key, set[str] | None] = field(default_factory=dict)
    rechecks: set[str] = field(default_factory=set)  # scopes whose access may change
    parts: list[weakref.ref[_Part]] = field(default_factory=list)
    count: int = 0
    # The changes of callbacks that have not run yet, by part number.
    unrun: dict[int, tuple[Key, frozenset[str], bool, frozenset[str] | None]] = field(
        default_factory=dict
    )

    def add(self, number: int) -> None:
        """Part ``number`` ran (or was dropped after a commit): keep its change."""
        entry = self.unrun.pop(number, None)
        if entry is not None:
            key, paths, recheck, rows = entry
            self.paths.setdefault(key, set()).update(paths)
            named = self.rows.setdefault(key, set())
            if named is not None:
                self.rows[key] = None if rows is None else named | rows
            if recheck:
                self.rechecks.add(key[0])

    def gone(self, number: int, ref: object) -> None:
        """Part ``number`` was freed: run, rolled back, or skipped after a commit."""
        try:
            if number not in self.unrun:
                return  # it ran
            if self._committed():
                self.add(number)
            else:
                del self.unrun[number]  # rolled back
            if self.paths and not self.waiting():
                _flush(self)
        except Exception:
            logger.exception("Could not emit the changes of a committed transaction.")

    def _committed(self) -> bool:
        """Whether the transaction committed (its hooks did not all run), as
        opposed to rolled back. Read from its own connection, in any thread."""
        connection = self.connection
        if connection is None or connection.in_atomic_block:
            return False  # a savepoint rolled back; the transaction goes on
        return self.stale_flag or bool(
            getattr(connection, "run_commit_hooks_on_set_autocommit_on", False)
        )

    def pending_after(self, number: int) -> bool:
        """Whether a callback registered after part ``number`` will still run.

        Django runs on_commit callbacks in registration order, so only later ones
        matter; dead or finished ones are dropped from the end (amortised O(1)).
        """
        parts = self.parts
        while parts and ((part := parts[-1]()) is None or part.ran):
            parts.pop()
        return (
            bool(parts) and (last := parts[-1]()) is not None and last.number > number
        )

    def waiting(self) -> bool:
        return self.pending_after(-1)


class _Part:
    """One change's on_commit callback."""

    __slots__ = ("__weakref__", "batch", "number", "ran")

    def __init__(self, batch: _Batch, number: int) -> None:
        self.batch, self.number = batch, number
        self.ran = False

    def __call__(self) -> None:
        if self.ran:
            return  # run twice (a capture inside a real commit): once is enough
        self.ran = True
        try:
            self.batch.add(self.number)
            if not self.batch.pending_after(self.number):
                _flush(self.batch)
        except Exception:
            # Guarantee 2: never raise into Django's commit (it would skip the
            # callbacks after this one and fail the caller after its data saved).
            logger.exception("Could not emit the changes of a committed transaction.")


_local = threading.local()  # the open batch per database alias, per thread


def _current_batch(using: str) -> _Batch:
    batches: dict[str, _Batch] = _local.__dict__.setdefault("batches", {})
    batch = batches.get(using)
    # A batch whose callbacks all ran or were discarded belongs to a finished
    # transaction: start a new one, sending what it still held (a callback of
    # someone else's that raised stops Django from running the rest).
    if batch is None or not batch.waiting():
        if batch is not None and batch.paths:
            _flush(batch)
        batch = batches[using] = _new_batch(using)
    return batch


def new_batch(using: str = DEFAULT_DB_ALIAS) -> None:
    """Group the following changes apart from earlier ones still waiting.

    ``capture_events()`` runs only the callbacks registered inside it, so changes
    made before it (in a test transaction that never commits) must not hold its
    batch back.
    """
    batches: dict[str, _Batch] = _local.__dict__.setdefault("batches", {})
    batches[using] = _new_batch(using)


def _new_batch(using: str) -> _Batch:
    connection = transaction.get_connection(using)
    stale = bool(getattr(connection, "run_commit_hooks_on_set_autocommit_on", False))
    return _Batch(using, connection, stale)


def _flush(batch: _Batch) -> None:
    merged, batch.paths = batch.paths, {}
    rows, batch.rows = batch.rows, {}
    rechecks, batch.rechecks = batch.rechecks, set()
    _send(merged, rechecks, rows)


def _send(
    merged: dict[Key, set[str]] | dict[Key, frozenset[str]],
    rechecks: set[str] | frozenset[str] = frozenset(),
    rows: dict[Key, set[str] | None] | dict[Key, frozenset[str] | None] | None = None,
) -> None:
    """Emit the merged changes. Every event of a scope in ``rechecks`` carries the
    recheck, so none of that scope's changes can be rendered before it."""
    try:
        bus = get_bus()
    except Exception:
        logger.exception("No bus to emit %d change(s) to.", len(merged))
        return
    for (scope, origin, audience), paths in merged.items():
        named = (rows or {}).get((scope, origin, audience))
        try:
            event = ChangeEvent(
                scope,
                frozenset(paths),
                origin=origin,
                audience=audience,
                recheck=scope in rechecks,
                rows=None if named is None else frozenset(named),
            )
        except (TypeError, ValueError):
            logger.exception("Could not emit the change of %r.", scope)
            continue
        bus.emit_sync(event)


def emit_on_commit(
    scope: str,
    paths: frozenset[str],
    *,
    origin: str | None = None,
    audience: frozenset[str] | None = None,
    using: str | None = None,
    recheck: bool = False,
    rows: frozenset[str] | None = None,
) -> None:
    """Emit once the current transaction on ``using`` commits (at once without one);
    ``rows``: the rows the change is to (instance scopes), if known."""
    alias = using or DEFAULT_DB_ALIAS
    try:
        autocommit = not transaction.get_connection(alias).in_atomic_block
    except Exception:
        autocommit = False  # the general path below says what is wrong
    if autocommit:
        # Nothing to wait for or merge with: the change is committed already.
        key = (scope, origin, audience)
        _send({key: paths}, {scope} if recheck else frozenset(), {key: rows})
        return
    batch = _current_batch(alias)
    batch.count += 1
    part = _Part(batch, batch.count)
    batch.unrun[batch.count] = ((scope, origin, audience), paths, recheck, rows)
    batch.parts.append(weakref.ref(part, functools.partial(batch.gone, batch.count)))
    try:
        transaction.on_commit(part, using=alias, robust=True)
    except Exception:
        # Guarantee 2: a change never fails because of its notification.
        logger.exception("Could not schedule the change of %r after commit.", scope)


def emit(
    scope: str,
    paths: Iterable[str],
    *,
    audience: Iterable[str | int] | None = None,
    origin: str | object | None = _UNSET,
    using: str | None = None,
    recheck: bool = False,
    rows: Iterable[str] | None = None,
) -> None:
    """Tell the live pages of ``scope`` that ``paths`` changed, after commit.

    For changes that send no model signals (``QuerySet.update()``, raw SQL) or that
    are not model data at all. ``audience`` limits delivery to these user ids
    (``user.pk`` values are accepted); ``origin`` defaults to the tab whose request
    is being handled; ``recheck=True`` says the change may take access away: every
    stream of the scope asks ``has_permission()`` again before rendering it (or
    any change after it); ``rows`` names the rows that changed (instance scopes,
    ``"app.model:pk"``), so that keyed lists send those rows alone. Bad arguments
    raise at once, before anything is scheduled.
    """
    require_name(scope, name="scope")
    frozen = freeze_paths(paths, name="paths")
    people = None
    if audience is not None:
        if isinstance(audience, (str, bytes)):
            freeze_strings(audience, name="audience")  # raises the precise TypeError
        people = freeze_strings(
            [
                str(x) if isinstance(x, int) and not isinstance(x, bool) else x
                for x in audience
            ],
            name="audience",
        )
    sender = current_origin() if origin is _UNSET else origin
    if sender is not None and not isinstance(sender, str):
        raise TypeError(f"origin must be a str or None, got {sender!r}.")
    if not isinstance(recheck, bool):
        raise TypeError(f"recheck must be a bool, got {recheck!r}.")
    named = None if rows is None else freeze_strings(rows, name="rows")
    emit_on_commit(
        scope,
        frozen,
        origin=sender,
        audience=people,
        using=using,
        recheck=recheck,
        rows=named,
    )
