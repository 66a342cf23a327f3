"""One connection's view of a page: what it has been sent, and what it needs next.

Both ways of streaming use it: ``reactive_stream()`` (one connection, its own
subscription) and the stream hubs (every connection of a page on one shared
subscription). Given a batch of events it says which blocks the connection needs
re-rendered; given the renders it picks what differs from what it already shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactive_blocks.metrics import get_metrics
from reactive_blocks.rows.render import Keyed, RowsPlan

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from reactive_blocks.events import ChangeEvent
    from reactive_blocks.index import BlockRef, DependencyIndex

__all__ = [
    "EVERYTHING",
    "Need",
    "Viewer",
    "adopt_rows",
    "affected_on",
    "behind",
    "blocks_for",
    "named_rows",
    "needed_paths",
    "rows_plans",
]

# What a connection needs after a batch: the changed paths whose blocks it must
# get again, or EVERYTHING (a resync: every block, rendered from fresh data).
Need = frozenset[str] | None
EVERYTHING: frozenset[str] = frozenset({"*"})


def behind(
    cursor: int | None,
    epoch: str | None,
    *,
    current_epoch: str,
    revision: int,
    latest: int | None,
) -> bool:
    """Whether a page that connects at ``cursor`` of ``epoch`` may lack changes
    (every kind of stream asks this, and resyncs if so): its cursor numbers another
    history (a restart, Redis that lost its data), the scope changed after it
    (``revision``), or it is ahead of the bus (``latest``, when known here), so
    its history is unknown."""
    if epoch is not None and epoch != current_epoch:
        return True
    if cursor is None:
        return False
    return revision > cursor or (latest is not None and cursor > latest)


def affected_on(
    index: DependencyIndex, paths: frozenset[str], template_name: str | None
) -> list[BlockRef]:
    """The blocks ``paths`` affect on pages of ``template_name`` (None: any)."""
    blocks = index.affected_blocks(paths)
    if template_name is None:
        return blocks
    return [ref for ref in blocks if ref.template_name == template_name]


def blocks_for(
    index: DependencyIndex, need: frozenset[str], template_name: str | None
) -> tuple[list[BlockRef], frozenset[str]]:
    """What a need re-renders (every block on a resync) and the paths its context
    must hold: one decision, whichever kind of stream renders."""
    if need is not EVERYTHING:
        return affected_on(index, need, template_name), need
    blocks = index.blocks(template_name)
    paths = frozenset().union(
        *(index.block_dependencies(r.template_name, r.block_name) for r in blocks)
    )
    return blocks, paths


def rows_plans(
    index: DependencyIndex,
    blocks: Sequence[BlockRef],
    viewers: Sequence[Viewer],
    bases: Mapping[BlockRef, Keyed],
    named: Mapping[BlockRef, frozenset[str] | None],
) -> dict[BlockRef, RowsPlan]:
    """How to render each block whose keyed loop may be sent a row at a time, for
    ``viewers``: against the rows they were last sent (``bases``), for the rows
    ``named`` by the changes (missing or None: unknown), whole as well if one of
    them shows something else."""
    plans = {}
    for ref in blocks:
        if not index.sends_rows(ref):
            continue
        base = bases.get(ref)
        whole = base is None or any(v.last_sent.get(ref) is not base for v in viewers)
        plans[ref] = RowsPlan(base, named.get(ref), whole)
    return plans


def adopt_rows(
    viewer: Viewer, bases: Mapping[BlockRef, Keyed], cursor: int | None, latest: int
) -> None:
    """A page that connects, rendered after the rows last sent to the others of
    its hub and not behind, shows those rows if nothing changed since they were
    sent (``latest``: the scope's revision; a change not rendered for anyone, an
    author's own, leaves them behind): its first change can be sent as rows too."""
    for ref, base in bases.items():
        if (
            ref not in viewer.last_sent
            and base.shown_at(cursor)
            and base.revision >= latest
        ):
            viewer.last_sent[ref] = base


def named_rows(
    events: Sequence[ChangeEvent],
    affected: Callable[[frozenset[str]], Sequence[BlockRef]],
) -> dict[BlockRef, frozenset[str] | None]:
    """The rows the changes name, per block they affect (None: one of them did
    not say which)."""
    named: dict[BlockRef, frozenset[str] | None] = {}
    for event in events:
        for ref in affected(event.changed_paths):
            before = named.get(ref, frozenset())
            rows = event.rows
            named[ref] = None if before is None or rows is None else before | rows
    return named


def needed_paths(events: Sequence[ChangeEvent]) -> frozenset[str]:
    return frozenset().union(*(e.changed_paths for e in events))


class Viewer:
    """What one connection was sent, block by block, and whose changes are its own."""

    __slots__ = ("last_sent", "origin", "resync", "user_id")

    def __init__(
        self, origin: str | None, user_id: str | None, *, resync: bool = False
    ) -> None:
        self.origin = origin
        self.user_id = user_id
        self.resync = resync  # the next batch sends every block
        # What it shows of each block: the HTML, or the rows of a keyed block.
        self.last_sent: dict[BlockRef, str | Keyed] = {}

    def sees(self, event: ChangeEvent) -> bool:
        audience = event.audience
        return audience is None or (
            self.user_id is not None and self.user_id in audience
        )

    def need(
        self,
        events: Sequence[ChangeEvent],
        lagged: bool,
        affected: Callable[[frozenset[str]], Sequence[BlockRef]],
    ) -> Need:
        """The paths to re-render for this connection (EVERYTHING: resync), or None."""
        visible = [e for e in events if self.sees(e)]
        own = [
            e for e in visible if self.origin is not None and e.origin == self.origin
        ]
        if own:
            # The author's tab shows its own version of these blocks now, which
            # is not what this connection was last sent: never cut them off.
            for ref in affected(needed_paths(own)):
                self.last_sent.pop(ref, None)
        if lagged or self.resync:
            self.resync = False
            get_metrics().resyncs.inc()
            return EVERYTHING
        others = [e for e in visible if e not in own] if own else visible
        return needed_paths(others) if others else None

    def choose(
        self, blocks: Sequence[BlockRef], rendered: Mapping[BlockRef, str | Keyed]
    ) -> list[tuple[BlockRef, str]]:
        """The renders that differ from what this connection shows (early cutoff);
        for a keyed block, its rows if it shows the rows they were made against."""
        fresh = []
        last_sent = self.last_sent
        for ref in blocks:
            html = rendered.get(ref)
            if isinstance(html, Keyed):
                shown = last_sent.get(ref)
                message = html.message_for(shown)
                if message is None and html.full is None and shown is not html.base:
                    self.resync = True  # cannot happen; never leave it stale
                    continue
                last_sent[ref] = html
                if message:
                    fresh.append((ref, message))
                continue
            if html is None or last_sent.get(ref) == html:
                continue
            last_sent[ref] = html
            fresh.append((ref, html))
        return fresh
