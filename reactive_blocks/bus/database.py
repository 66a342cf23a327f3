"""The default bus: changes travel between the processes of one machine through
the project's own database, as a table of changes read with a cursor.

A save in ``manage.py shell``, a management command, a worker or another server
process reaches every open page with no Redis: each emit is written to the
``Change`` table by a writer thread (the emitter never waits for it), and each
serving process reads the rows after the last it saw, every ``poll_interval``
seconds and at once after its own writes. The row id is the revision, so every
process numbers every change alike.

``close_user()``, ``close_session()`` (a logout) and ``recheck()`` reach every
process too, as control rows. Presence stays in each process (the Redis bus shares
it); for many machines, use ``RedisBus``.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from reactive_blocks.bus.memory import ReactiveBus, check_maxsize
from reactive_blocks.bus.status import STATUS_SECONDS, STATUS_TTL_SECONDS, process_name
from reactive_blocks.events import ChangeEvent
from reactive_blocks.metrics import get_metrics

if TYPE_CHECKING:
    from reactive_blocks.bus.state import SubscriberState
    from reactive_blocks.bus.subscription import Position
    from reactive_blocks.events import ConnectionInfo

__all__ = ["DatabaseBus"]

logger = logging.getLogger(__name__)

EPOCH = "db"  # every process reading one table shares its numbering
# The scope of the rows that carry close_user(), close_session() and recheck().
CONTROL = "reactive_blocks:control"
READ_LIMIT = 500  # rows read per query
MAX_GAP = 100  # skipped ids waited for; more is a loss (every page here resyncs)
GAP_SECONDS = 5.0  # how long a skipped id may take to commit
RETRY_SECONDS = 1.0  # after a failed write or read
FLUSH_AT_EXIT_SECONDS = 5.0  # how long a finishing process waits for its writes


class DatabaseBus(ReactiveBus):
    """Events shared by the processes using one database (``Change`` table)."""

    crosses_processes = True

    def __init__(
        self,
        maxsize: int = 256,
        *,
        using: str = "default",
        poll_interval: float = 0.1,
        keep: int = 10_000,
        outbox: int = 10_000,
        **options: Any,
    ) -> None:
        super().__init__(maxsize, **options)
        given: object = using
        if not isinstance(given, str) or not given:
            raise TypeError(f"using must be a database alias, got {using!r}.")
        if isinstance(poll_interval, bool) or not isinstance(
            poll_interval, int | float
        ):
            raise TypeError(f"poll_interval must be a number, got {poll_interval!r}.")
        if not 0 < poll_interval <= 10:
            raise ValueError(
                f"poll_interval must be more than 0 and at most 10 seconds, got "
                f"{poll_interval!r}."
            )
        self.using = using
        self.poll_interval = float(poll_interval)
        self.keep = check_maxsize(keep, "keep")
        # Rows to write: (scope, JSON), changes and the control messages below.
        self._outbox: collections.deque[tuple[str, str]] = collections.deque(
            maxlen=check_maxsize(outbox, "outbox")
        )
        self._outbox_dropped = 0
        self._written = 0
        self._in_flight = 0  # changes taken by the writer, not yet written
        self._pending = threading.Condition(threading.Lock())
        self._poll_now = threading.Event()
        self._begun = threading.Event()  # the reader knows where the table stands
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._cursor: int | None = None  # the last row read; None until known
        self._gaps: dict[int, float] = {}  # skipped ids, until when to look for them
        self._failing: set[str] = set()  # "read", "write": said once per outage
        # Until the reader knows where the table stands, positions name an epoch
        # of their own: a page rendered then resyncs rather than miss a change.
        self._epoch = f"{EPOCH}-starting-{secrets.token_hex(4)}"
        self._threads_lock = threading.Lock()
        self._pid = os.getpid()  # threads belong to the process that started them
        self._name = secrets.token_hex(8)  # tells this bus's control rows apart
        self.status_interval = STATUS_SECONDS  # how often it reports (reactive_status)

    def __repr__(self) -> str:
        return (
            f"<DatabaseBus using={self.using!r} subscribers={self.subscriber_count} "
            f"written={self._written}>"
        )

    # Emitting: to the table, by the writer thread --------------------------------

    def _publish(self, event: ChangeEvent) -> None:
        self._send(event.scope, _encode(event))

    def _send(self, scope: str, text: str) -> None:
        with self._pending:
            if len(self._outbox) == self._outbox.maxlen:
                self._lost(1)
            self._outbox.append((scope, text))
            self._pending.notify_all()
        self._start("_writer", self._write_loop, "reactive-blocks-writer")

    # Closing and rechecking in every process: a control row ------------------------

    def close_user(self, user_id: str, scope: str | None = None) -> int:
        closed = super().close_user(user_id, scope)
        self._control("user_id", user_id, scope)
        return closed

    def close_session(self, session: str, scope: str | None = None) -> int:
        closed = super().close_session(session, scope)
        self._control("session", session, scope)
        return closed

    def recheck(self, scope: str) -> None:
        super().recheck(scope)
        self._control("recheck", "", scope)

    def _control(self, kind: str, value: str, scope: str | None) -> None:
        """Tell the other processes to do what was just done here."""
        message = {"k": kind, "v": value, "s": scope, "from": self._name}
        self._send(CONTROL, json.dumps(message))

    def _controlled(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind, value, scope = message["k"], message["v"], message["s"]
        except Exception:
            logger.exception("A control row could not be read: %r.", text)
            return
        if message.get("from") == self._name:
            return  # done here already
        if kind == "recheck" and isinstance(scope, str):
            super().recheck(scope)
        elif kind in {"user_id", "session"} and isinstance(value, str):
            self._close_here(scope, kind, value)

    def _write_loop(self) -> None:
        from django.db import connections

        while not self._closed.is_set():
            with self._pending:
                while not self._outbox and not self._closed.is_set():
                    self._pending.wait()
                batch = list(self._outbox)
                self._outbox.clear()
                self._in_flight = len(batch)
            if not batch:
                continue
            if self._reader is not None:
                # This process's own changes come after where its reader starts.
                self._begun.wait(FLUSH_AT_EXIT_SECONDS)
            try:
                self._insert(batch)
                # Said before flush() returns, so its caller finds it in the log.
                self._outage("write", None)
                with self._pending:
                    self._in_flight = 0
                    self._pending.notify_all()
            except Exception as exc:
                self._outage("write", exc)
                connections[self.using].close()
                with self._pending:
                    room = (self._outbox.maxlen or 0) - len(self._outbox)
                    lost = max(0, len(batch) - room)
                    if lost:
                        self._lost(lost)
                    self._outbox.extendleft(reversed(batch[lost:]))
                    self._in_flight = 0
                self._closed.wait(RETRY_SECONDS)

    def _insert(self, batch: list[tuple[str, str]]) -> None:
        from reactive_blocks.models import Change

        rows = Change.objects.using(self.using).bulk_create(
            [Change(scope=scope, event=text) for scope, text in batch]
        )
        before = self._written
        self._written += len(rows)
        self._poll_now.set()  # this process's own subscribers, at once
        if before // 1000 != self._written // 1000 and rows[-1].pk is not None:
            Change.objects.using(self.using).filter(
                pk__lte=rows[-1].pk - self.keep
            ).delete()

    def flush(self, timeout: float = FLUSH_AT_EXIT_SECONDS) -> bool:
        """Wait until every change emitted so far is written (or ``timeout``): a
        process about to end (``manage.py shell``) must not take them along."""
        deadline = time.monotonic() + timeout
        with self._pending:
            while self._outbox or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or self._writer is None or self._closed.is_set():
                    return False
                self._pending.wait(left)
        return True

    # Reading: every process, from the table -------------------------------------

    def _register(
        self, scope: str, connection: ConnectionInfo | None, shared: bool = False
    ) -> SubscriberState:
        self._start("_reader", self._read_loop, "reactive-blocks-reader")
        return super()._register(scope, connection, shared)

    def position(self) -> Position:
        self._start("_reader", self._read_loop, "reactive-blocks-reader")
        return super().position()

    def _read_loop(self) -> None:
        from django.db import connections
        from django.db.models import Max

        from reactive_blocks.models import Change

        table = Change.objects.using(self.using)
        next_report = 0.0
        while not self._closed.is_set():
            try:
                if self._cursor is None:
                    self._begin(table.aggregate(top=Max("pk"))["top"] or 0)
                    continue
                rows = list(
                    table.filter(pk__gt=self._cursor)
                    .order_by("pk")
                    .values_list("pk", "scope", "event")[:READ_LIMIT]
                )
                if rows:
                    self._deliver(rows)
                    if len(rows) == READ_LIMIT:
                        continue
                elif (
                    self._sequence > 0
                    and not table.filter(pk__gte=self._cursor).exists()
                ):
                    # The table was emptied (a flush, a new database): ids start
                    # again, so cursors of the old numbering mean nothing now.
                    self._cursor = None
                    self._renumber()
                    continue
                if self._gaps:
                    self._fill_gaps(table)
            except Exception as exc:
                self._outage("read", exc)
                # The thread keeps its connection between polls (a new one per
                # poll would cost a connection a tenth of a second); a broken
                # one is dropped here and made again at the next poll.
                connections[self.using].close()
                self._closed.wait(RETRY_SECONDS)
                continue
            self._outage("read", None)
            # A process that serves streams reports (never before its first read:
            # pages rendered until then resync).
            if self.status_source is not None and time.monotonic() >= next_report:
                next_report = time.monotonic() + self.status_interval
                self._write_report()
            self._poll_now.wait(self.poll_interval)
            self._poll_now.clear()
        if next_report:
            self._write_report(gone=True)

    # Reports ------------------------------------------------------------------

    def _write_report(self, *, gone: bool = False) -> None:
        """Keep this process's report in the table (the reader's thread does)."""
        from reactive_blocks.models import ProcessStatus

        table = ProcessStatus.objects.using(self.using)
        try:
            if gone:
                table.filter(process=process_name()).delete()
            else:
                table.update_or_create(
                    process=process_name(),
                    defaults={
                        "reported": time.time(),
                        "report": json.dumps(self.report()),
                    },
                )
        except Exception as exc:
            # Never the bus's business: a table not migrated yet, say.
            self._outage("write reports to", exc)
        else:
            self._outage("write reports to", None)

    def statuses(self) -> list[dict[str, Any]]:
        """The latest report of every process that serves streams on this
        database; reports of processes gone are deleted."""
        from reactive_blocks.models import ProcessStatus

        table = ProcessStatus.objects.using(self.using)
        table.filter(reported__lt=time.time() - STATUS_TTL_SECONDS).delete()
        found = []
        for text in table.order_by("process").values_list("report", flat=True):
            with contextlib.suppress(ValueError):
                report = json.loads(text)
                if isinstance(report, dict):
                    found.append(report)
        return found

    def _begin(self, top: int) -> None:
        with self._lock:
            self._cursor = self._sequence = top
            # What changed before this process started is not known scope by
            # scope: every scope counts as changed at ``top``, so a page that was
            # open across a restart (and may have missed a change) resyncs.
            self._forgotten = max(self._forgotten, top)
            starting = self._epoch.startswith(f"{EPOCH}-starting-")
            if starting:
                self._epoch = EPOCH
        if starting:
            # Streams that began before the table's position was known cannot
            # say what they missed: they start again in the shared numbering.
            self._fanout.renumber(EPOCH)
        self._begun.set()

    def _renumber(self) -> None:
        epoch = f"{EPOCH}-{secrets.token_hex(4)}"
        with self._lock:
            self._epoch = epoch
            self._sequence = self._forgotten = 0
            self._revisions.clear()
            self._gaps.clear()
        self._fanout.renumber(epoch)

    def _outage(self, what: str, error: Exception | None) -> None:
        """Say once that the table cannot be read or written (and once that it
        can again), not every retry: a missing migration or a database that is
        away would fill the log."""
        failing = what in self._failing
        if error is None and failing:
            self._failing.discard(what)
            logger.warning("The bus's table works again (%s).", what)
        elif error is not None and not failing:
            self._failing.add(what)
            logger.error(
                "Could not %s the bus's table (%s: %s); retrying every %g s. Has "
                "`manage.py migrate` created it?",
                what,
                type(error).__name__,
                error,
                RETRY_SECONDS,
                exc_info=error,
            )
        elif error is not None:
            logger.debug("Still cannot %s the bus's table: %s", what, error)

    def _lost(self, count: int) -> None:
        """Changes dropped before reaching the table: this process's pages
        resync (the other processes' never knew of them)."""
        self._outbox_dropped += count
        get_metrics().messages_dropped.labels(reason="outbox_full").inc(count)
        logger.error("The bus's outbox is full: %d change(s) lost.", count)
        self._fanout.lag()

    def _fill_gaps(self, table: Any) -> None:
        """Rows whose ids were skipped: a transaction that committed after a later
        one (Postgres, MySQL) shows up late; its scopes resync. Ids still
        missing after GAP_SECONDS were rolled back."""
        now = time.monotonic()
        late = list(table.filter(pk__in=list(self._gaps)).values_list("pk", "scope"))
        for pk, _ in late:
            self._gaps.pop(pk, None)
        if late:
            self._fanout.lag({scope for _, scope in late})
        for pk, deadline in list(self._gaps.items()):
            if deadline < now:
                del self._gaps[pk]

    def _note_gap(self, after: int, before: int) -> None:
        """Ids between ``after`` and ``before`` were skipped."""
        if before - after - 1 > MAX_GAP:
            # Too many to wait for (rows trimmed before this process read them):
            # every page here resyncs.
            self._fanout.lag()
            return
        deadline = time.monotonic() + GAP_SECONDS
        for pk in range(after + 1, before):
            self._gaps[pk] = deadline

    def _deliver(self, rows: list[tuple[int, str, str]]) -> None:
        for pk, scope, text in rows:
            cursor = self._cursor
            if cursor is not None and pk > cursor + 1:
                self._note_gap(cursor, pk)
            if scope == CONTROL:
                self._cursor = pk
                self._controlled(text)
                continue
            event, at = _decode(scope, text)
            if at is not None:
                get_metrics().bus_lag.observe(max(0.0, time.time() - at))
            with self._lock:
                self._cursor = self._sequence = pk
                self._emitted += 1
                revisions = self._revisions
                revisions.pop(scope, None)
                revisions[scope] = pk
                if len(revisions) > self.remembered_scopes:
                    self._forgotten = revisions.pop(next(iter(revisions)))
                if event is not None:
                    self._fanout.deliver(scope, pk, event, at)

    # Threads ------------------------------------------------------------------

    def _start(self, name: str, target: Any, thread_name: str) -> None:
        if self._pid != os.getpid():
            self._forked()
        if getattr(self, name) is not None or self._closed.is_set():
            return
        with self._threads_lock:
            if getattr(self, name) is not None:
                return
            thread = threading.Thread(target=target, name=thread_name, daemon=True)
            setattr(self, name, thread)
            thread.start()
            if name == "_writer":
                atexit.register(self.flush)

    def _forked(self) -> None:
        """A child process (a prefork server or worker) has none of its parent's
        threads: it starts its own, with fresh locks and no cursor."""
        self._pid, self._name = os.getpid(), secrets.token_hex(8)
        self._pending = threading.Condition(threading.Lock())
        self._poll_now, self._begun = threading.Event(), threading.Event()
        self._threads_lock = threading.Lock()
        self._writer = self._reader = None
        self._cursor, self._in_flight = None, 0
        self._gaps = {}

    def close(self, scope: str | None = None) -> None:
        super().close(scope)
        if scope is None:
            self.flush(timeout=1.0)
            self._closed.set()
            with self._pending:
                self._pending.notify_all()
            self._poll_now.set()

    @property
    def outbox_dropped_count(self) -> int:
        """Changes lost because the database could not take them fast enough."""
        return self._outbox_dropped

    @property
    def written_count(self) -> int:
        return self._written


def _encode(event: ChangeEvent) -> str:
    return json.dumps(
        {
            "p": sorted(event.changed_paths),
            "o": event.origin,
            "a": None if event.audience is None else sorted(event.audience),
            "r": event.recheck,
            "w": None if event.rows is None else sorted(event.rows),
            "t": round(time.time(), 6),  # when it was emitted: the bus lag
        }
    )


def _decode(scope: str, text: str) -> tuple[ChangeEvent | None, float | None]:
    """The change a row holds, and when it was emitted (if it says)."""
    try:
        data = json.loads(text)
        audience, rows, at = data.get("a"), data.get("w"), data.get("t")
        event = ChangeEvent(
            scope,
            frozenset(data["p"]),
            origin=data.get("o"),
            audience=None if audience is None else frozenset(audience),
            recheck=bool(data.get("r")),
            rows=None if rows is None else frozenset(rows),
        )
    except Exception:
        logger.exception("A change in the database could not be read: %r.", text)
        return None, None
    return event, float(at) if isinstance(at, int | float) else None
