"""Rendering a block with a keyed loop (``analysis/loops.py``) so that a change to
one item costs one row, not the whole list.

The block is rendered as the page would be, except for its loop: there the items
are fetched once and each row's id rendered (cheap: a few nodes), and only the
rows of items the change names (``ChangeEvent.rows``) or that are new to the page
are rendered in full. What surrounds the loop is compared with what the page
shows; if it changed, or the rows cannot be told apart, the whole block is sent as
before. A page's state is kept as ``Keyed``: the ids of its rows, in order, and the
block's HTML around them.
"""

from __future__ import annotations

import contextvars
import html
import logging
import threading
import weakref
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from django.db.models import Model
from django.template import Context
from django.template.loader import get_template
from django.template.loader_tags import BlockNode
from render_block.django import django_render_block

from reactive_blocks.analysis.loops import keyed_loop
from reactive_blocks.analysis.reads import page_chain
from reactive_blocks.rendering import render_block
from reactive_blocks.rows.patch import RowsPatch, row_ops
from reactive_blocks.tracking.page_scopes import instance_scope
from reactive_blocks.tracking.registry import tracker_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from reactive_blocks.analysis.loops import KeyedLoop

__all__ = ["Keyed", "RowsPlan", "render_keyed", "row_identity"]

logger = logging.getLogger(__name__)

# Stand in for the loop's output: never in rendered HTML (NUL is not allowed).
MARK = "\x00reactive-rows\x00"
START, END = "\x00reactive-rows-start\x00", "\x00reactive-rows-end\x00"
MIN_ROWS_WHOLE = 16  # past this many rows to render (and a quarter of all), whole
_collector: contextvars.ContextVar[_Collector | None] = contextvars.ContextVar(
    "reactive_rows", default=None
)
# A cache, not state: compiled block nodes (kept by Django's cached loader) map to
# their keyed loop, and entries go when the template does.
_LOOPS: weakref.WeakKeyDictionary[BlockNode, KeyedLoop | None] = (
    weakref.WeakKeyDictionary()
)


class Keyed:
    """A keyed block rendered for one change: the page state it leads to, and
    what to send a page that shows ``base`` (the rows) or anything else (whole)."""

    __slots__ = (
        "base",
        "digests",
        "full",
        "keys",
        "patch",
        "revision",
        "rows_rendered",
        "skeleton",
    )

    def __init__(
        self,
        skeleton: str,
        keys: tuple[str, ...],
        *,
        full: str | None = None,
        patch: RowsPatch | None = None,
        base: Keyed | None = None,
        rows_rendered: int = 0,
        digests: dict[str, int] | None = None,
    ) -> None:
        self.skeleton, self.keys = skeleton, keys
        self.full, self.patch, self.base = full, patch, base
        self.rows_rendered = rows_rendered
        # Hashes of the rows' HTML, where known: a row rendered again the same
        # is not sent (early cutoff, as for whole blocks).
        self.digests = digests or {}
        self.revision = -1  # the bus revision it was sent at (kept)

    def message_for(self, shown: object) -> str | None:
        """What a page showing ``shown`` (a ``Keyed`` sent before, or not) gets:
        the rows, the whole block, or None if nothing changed for it."""
        if self.patch is not None and shown is not None and shown is self.base:
            return self.patch or None
        return self.full

    def release(self, revision: int) -> None:
        """Sent at ``revision``: keep only the state pages are remembered to show
        (not the HTML, nor the state before it, which would chain every earlier
        one)."""
        self.full = self.patch = self.base = None
        self.revision = revision

    def shown_at(self, cursor: int | None) -> bool:
        """Whether a page rendered at bus position ``cursor`` shows these rows (it
        came after them, and nothing it missed was left out: the stream checks)."""
        return cursor is not None and self.revision >= 0 and cursor >= self.revision


@dataclass(frozen=True, slots=True)
class RowsPlan:
    """How to render a keyed block for a change: the state the pages show
    (``base``), the items the change names (None: unknown, so whole), and whether
    some page needs the whole block anyway."""

    base: Keyed | None
    rows: frozenset[str] | None
    whole: bool


def render_keyed(
    template_name: str,
    block_name: str,
    context: Mapping[str, Any],
    plan: RowsPlan,
) -> Keyed | str:
    """The block rendered for ``plan``: a ``Keyed``, or its HTML if it has no
    keyed loop (rendered as any block)."""
    template = get_template(template_name)
    loop = _loop_of(template, block_name)
    if loop is None:
        return render_block(template_name, block_name, dict(context))
    if plan.base is not None and plan.rows is not None:
        keyed = _by_rows(template, block_name, context, loop, plan)
        if keyed is not None:
            return keyed
    return _whole(template, block_name, context, loop)


def row_identity(item: object) -> str | None:
    """The instance scope of a tracked model instance (what ``ChangeEvent.rows``
    names), else None: such a row is rendered at every change."""
    tracker = tracker_for(type(item)) if isinstance(item, Model) else None
    pk = getattr(item, "pk", None)
    if tracker is None or pk is None:
        return None
    return instance_scope(tracker.model, pk)


# Rendering ---------------------------------------------------------------------------


def _by_rows(
    template: Any,
    block_name: str,
    context: Mapping[str, Any],
    loop: KeyedLoop,
    plan: RowsPlan,
) -> Keyed | None:
    base, wanted = plan.base, plan.rows
    if base is None or wanted is None:
        return None
    collector = _Collector(loop, "rows", wanted, frozenset(base.keys))
    skeleton = _render(template, block_name, context, collector)
    if collector.failed or skeleton != base.skeleton:
        return None
    rendered = {key: hash(row) for key, row in collector.rows.items()}
    changed = {
        key: row
        for key, row in collector.rows.items()
        if base.digests.get(key) != rendered[key]
    }
    patch = row_ops(block_name, base.keys, collector.keys, changed)
    if patch is None:
        return None
    full = None
    if plan.whole:
        full = _whole(template, block_name, context, loop).full
    kept = {k: base.digests[k] for k in collector.keys if k in base.digests}
    return Keyed(
        skeleton,
        tuple(collector.keys),
        full=full,
        patch=patch,
        base=base,
        rows_rendered=len(collector.rows),
        digests={**kept, **rendered},
    )


def _whole(
    template: Any, block_name: str, context: Mapping[str, Any], loop: KeyedLoop
) -> Keyed:
    collector = _Collector(loop, "whole")
    marked = _render(template, block_name, context, collector)
    if collector.failed or marked.count(START) != 1:
        # The loop did not render once (inside an {% if %} that was false, or
        # twice): the page gets the block, and no rows next time.
        full = marked.replace(START, "").replace(END, "")
        return Keyed(full + MARK, (), full=full)
    before, rest = marked.split(START, 1)
    inner, after = rest.split(END, 1)
    return Keyed(
        before + MARK + after, tuple(collector.keys), full=before + inner + after
    )


def _render(
    template: Any, block_name: str, context: Mapping[str, Any], collector: _Collector
) -> str:
    _install(collector.loop)
    token = _collector.set(collector)
    try:
        return str(django_render_block(template, block_name, Context(dict(context))))
    finally:
        _collector.reset(token)


def _loop_of(template: Any, block_name: str) -> KeyedLoop | None:
    """The keyed loop of the block's most derived definition, if it has one."""
    for level in page_chain(template.template):
        for node in level.nodelist.get_nodes_by_type(BlockNode):
            if isinstance(node, BlockNode) and node.name == block_name:
                if node not in _LOOPS:
                    _LOOPS[node] = keyed_loop(node)
                return _LOOPS[node]
    return None


_installing = threading.Lock()


def _install(loop: KeyedLoop) -> None:
    """Route the loop node's rendering through the collector of this render (and
    only this one: other renders of the same template go on as ever)."""
    node: Any = loop.node
    with _installing:
        if getattr(node, "reactive_rows", False):
            return
        _wrap(node)


def _wrap(node: Any) -> None:
    original: Callable[[Context], str] = node.render

    def render(context: Context) -> str:
        collector = _collector.get()
        if collector is None or collector.loop.node is not node:
            return original(context)
        return collector.render(original, context)

    node.render = render
    node.reactive_rows = True


class _Collector:
    """What one render of a keyed block learns at its loop."""

    def __init__(
        self,
        loop: KeyedLoop,
        mode: str,
        wanted: frozenset[str] = frozenset(),
        shown: frozenset[str] = frozenset(),
    ) -> None:
        self.loop, self.mode = loop, mode
        self.wanted, self.shown = wanted, shown  # items named; ids the page has
        self.keys: list[str] = []
        self.rows: dict[str, str] = {}
        self.calls = 0
        self.failed = False

    def render(self, original: Callable[[Context], str], context: Context) -> str:
        self.calls += 1
        node: Any = self.loop.node
        values = node.sequence.resolve(context, ignore_failures=True)
        if self.calls > 1 or (values is not None and not hasattr(values, "__len__")):
            # Rendered twice, or items that cannot be read twice (a generator).
            self.failed = True
            return original(context)
        items = list(values or [])
        if node.is_reversed:
            items.reverse()
        with context.push():
            for item in items:
                context[self.loop.loopvar] = item
                self.keys.append(html.unescape(self.loop.key.render(context)))
        if len(set(self.keys)) != len(self.keys):
            self.failed = True  # two rows with one id: not told apart
            return original(context)
        if self.mode == "whole":
            return START + original(context) + END
        identities = [row_identity(item) for item in items]
        kinds = {i.rsplit(":", 1)[0] for i in identities if i is not None}
        if any(named.rsplit(":", 1)[0] not in kinds for named in self.wanted):
            # A row of another model changed (a comment of a listed document):
            # which of these rows show it is not known.
            self.failed = True
            return MARK
        limit = max(MIN_ROWS_WHOLE, len(items) // 4)
        for key, item, identity in zip(self.keys, items, identities, strict=True):
            if (
                key in self.shown
                and identity is not None
                and identity not in self.wanted
            ):
                continue
            if len(self.rows) >= limit:
                self.failed = True  # so many rows: the whole block is cheaper
                break
            with context.push({self.loop.loopvar: item}):
                row = node.nodelist_loop.render(context).strip()
            if _row_id(row) != key:
                self.failed = True  # not one element with that id
                break
            self.rows[key] = row
        return MARK


def _row_id(row: str) -> str | None:
    """The id of ``row`` if it is exactly one element (and nothing beside it)."""
    reader = _OneElement()
    try:
        reader.feed(row)
        reader.close()
    except Exception:
        return None
    return reader.id if reader.elements == 1 and not reader.loose else None


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
    | {"source", "track", "wbr"}
)


class _OneElement(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.elements = 0
        self.loose = False  # text or elements outside the first element
        self.id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.elements += 1
            if self.elements == 1:
                self.id = dict(attrs).get("id")
        if tag not in _VOID:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            self.elements += 1
            if self.elements == 1:
                self.id = dict(attrs).get("id")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID:
            self.depth -= 1
            if self.depth < 0:
                self.loose = True

    def handle_data(self, data: str) -> None:
        if self.depth == 0 and data.strip():
            self.loose = True
