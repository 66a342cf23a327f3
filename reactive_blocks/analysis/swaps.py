"""Find the elements of a template's HTML that htmx swaps from SSE events.

``<div id="doc-body" sse-swap="content">{% block content %}…{% endblock %}</div>``
says: replace this element's content with the ``content`` event, which reactive_blocks
fills with the re-rendered ``{% block content %}``. This module reads the template
source as HTML (template tags stay in the text) and reports each such element, the
block it wraps, its ``id`` and whether a stream is opened around it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["SwapElement", "find_swaps"]

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)
_CONNECT = re.compile(r"\s(?:data-)?sse-connect\s*=|\{%\s*reactive_connect\b")
# Django takes any word as a block's name: {% block object-tools %} (admin's).
_BLOCK_TOKEN = re.compile(r"\{%\s*(?:block\s+([^\s%]+)|endblock\b[^%]*)\s*%\}")
_TEMPLATE_SYNTAX = re.compile(r"\{[{%#]")
# Commented-out markup is not part of the page.
_COMMENTS = re.compile(
    r"\{#.*?#\}|\{%\s*comment\b.*?%\}.*?\{%\s*endcomment\s*%\}"
    r"|\{%\s*verbatim\s*%\}.*?\{%\s*endverbatim\s*%\}",
    re.DOTALL,
)


@dataclass(slots=True)
class SwapElement:  # filled in while parsing; treat as read-only afterwards
    """One element carrying ``sse-swap`` (or ``data-sse-swap``)."""

    value: str  # the attribute value as written
    names: tuple[str, ...]  # event names (htmx accepts a comma-separated list)
    tag: str
    line: int
    dom_id: str | None
    dynamic: bool  # the value is a template expression: not guessed
    connected: bool  # it or an ancestor opens a stream (sse-connect / reactive_connect)
    enclosing: tuple[str, ...] = ()  # the {% block %}s the element sits in
    block: str | None = None  # the first {% block %} inside the element
    rows: bool = True  # data-reactive-rows="off": always sent whole
    personal: bool = False  # data-reactive-personal: rendered for each viewer


@dataclass(slots=True)
class _Open:
    tag: str
    connects: bool
    swap: SwapElement | None


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.swaps: list[SwapElement] = []
        self.stack: list[_Open] = []
        self.blocks: list[str] = []  # template blocks open at this point
        self.connect_count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, push=tag not in _VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, push=False)

    def _start(
        self, tag: str, attrs: list[tuple[str, str | None]], *, push: bool
    ) -> None:
        # {% reactive_connect %} renders attributes, so the raw start tag is read
        # for it; plain attributes come parsed.
        text = " " + (self.get_starttag_text() or "")
        connects = bool(_CONNECT.search(text))
        self.connect_count += connects
        values = dict(attrs)
        value = values.get("sse-swap", values.get("data-sse-swap"))
        swap = None
        if value is not None:
            dynamic = bool(_TEMPLATE_SYNTAX.search(value))
            names = (
                ()
                if dynamic
                else tuple(n.strip() for n in value.split(",") if n.strip())
            )
            swap = SwapElement(
                value=value,
                names=names,
                tag=tag,
                line=self.getpos()[0],
                dom_id=values.get("id") or None,
                dynamic=dynamic,
                connected=connects or any(o.connects for o in self.stack),
                enclosing=tuple(self.blocks),
                rows=values.get("data-reactive-rows") != "off",
                personal="data-reactive-personal" in values
                and values["data-reactive-personal"] not in ("false", "off"),
            )
            self.swaps.append(swap)
        if push:
            self.stack.append(_Open(tag, connects, swap))

    def handle_endtag(self, tag: str) -> None:
        # Tolerant: template conditionals can leave tags unbalanced.
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        for match in _BLOCK_TOKEN.finditer(data):
            name = match.group(1)
            if name is None:
                if self.blocks:
                    self.blocks.pop()
                continue
            self.blocks.append(name)
            for open_element in reversed(self.stack):
                swap = open_element.swap
                if swap is not None:
                    if swap.block is None:
                        swap.block = name
                    break


@functools.lru_cache(maxsize=512)
def find_swaps(source: str) -> tuple[tuple[SwapElement, ...], int]:
    """The swapped elements of ``source`` and how many elements open a stream.

    Memoised: a shared base template is read once, not once per page.
    """
    finder = _Finder()
    finder.feed(_COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), source))
    finder.close()
    return tuple(finder.swaps), finder.connect_count
