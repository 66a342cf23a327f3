"""Keyed loops: a ``{% for %}`` in a live block whose rows carry an ``id`` made
from the item, so that one changed item can be sent as its row alone.

A block's loop is keyed when, read from the compiled template:

* it is the block's only loop outside other loops, with one loop variable;
* each iteration is one element whose ``id`` attribute, in its opening tag, is
  built from the loop variable (``<li id="doc-{{ doc.pk }}">``);
* the row reads nothing but its item (and ``{% csrf_token %}``): no other context
  name, no ``forloop``, ``{% cycle %}`` or ``{% ifchanged %}``, nothing whose reads
  are hidden. A row that showed its position, or another row's data, could change
  without its item changing.

Anything else is streamed as the whole block, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.template import Node, NodeList
from django.template import defaulttags as dt
from django.template.base import TextNode, VariableNode
from django.template.loader_tags import BlockNode, IncludeNode
from django.templatetags import l10n, tz

from reactive_blocks.analysis.reads import django_engine, reads_of

if TYPE_CHECKING:
    from django.template import Engine

__all__ = ["KeyedLoop", "keyed_loop"]

# Tags that render their content as it is, in the context as it is: a loop in
# them renders its rows as a row rendered alone would.
_PASS_THROUGH = (
    dt.IfNode,
    dt.WithNode,
    dt.AutoEscapeControlNode,
    BlockNode,
    l10n.LocalizeNode,
    tz.LocalTimeNode,
    tz.TimezoneNode,
)
# Tags whose output depends on the row's place in the loop.
_POSITIONAL_TAGS = frozenset({"cycle", "ifchanged", "resetcycle"})
_FORLOOP = re.compile(r"\bforloop\b")
# The opening of the row's element, up to its id attribute's opening quote.
_ID_OPENING = re.compile(r"""^\s*<[A-Za-z][^<>]*?\sid=(["'])""", re.DOTALL)


@dataclass(frozen=True, slots=True, eq=False)
class KeyedLoop:
    """The loop of a block whose rows can be sent alone."""

    node: dt.ForNode
    loopvar: str
    key: NodeList  # renders a row's id, with the loop variable bound


def keyed_loop(block: BlockNode, engine: Engine | None = None) -> KeyedLoop | None:
    """The keyed loop of ``block`` (its most derived definition), or None."""
    loops = list(_loops(block.nodelist))
    if len(loops) != 1:
        return None
    node = loops[0]
    if len(node.loopvars) != 1:
        return None
    loopvar = node.loopvars[0]
    body = [n for n in node.nodelist_loop if isinstance(n, Node)]
    if _positional(body, engine):
        return None
    outer, everything = reads_of(body, [loopvar], engine)
    if outer or everything:
        return None
    key = _key_nodes(body, loopvar)
    return None if key is None else KeyedLoop(node, loopvar, key)


def _loops(nodes: NodeList | list[Node]) -> list[dt.ForNode]:
    """The ``{% for %}`` nodes of ``nodes`` that are not inside another loop, nor
    inside a tag that changes what its content renders ({% filter %},
    {% spaceless %}, {% cache %}, a tag of its own): a row rendered alone would
    miss what that tag does to it."""
    found: list[dt.ForNode] = []
    for node in nodes:
        if isinstance(node, dt.ForNode):
            found.append(node)
        elif isinstance(node, _PASS_THROUGH):
            for attr in node.child_nodelists:
                found.extend(_loops(getattr(node, attr, None) or []))
    return found


def _positional(nodes: list[Node], engine: Engine | None, depth: int = 0) -> bool:
    """Whether any of ``nodes`` (or their children, or the templates they
    include) depends on the loop's position, as far as their source says."""
    for node in nodes:
        token = getattr(node, "token", None)
        contents = getattr(token, "contents", "") or ""
        if isinstance(node, VariableNode) or not isinstance(node, TextNode):
            if _FORLOOP.search(contents):
                return True
            if contents.split(" ", 1)[0] in _POSITIONAL_TAGS:
                return True
        if isinstance(node, IncludeNode) and _include_positional(node, engine, depth):
            return True
        for attr in getattr(node, "child_nodelists", ()):
            if _positional(list(getattr(node, attr, None) or []), engine, depth):
                return True
    return False


def _include_positional(node: IncludeNode, engine: Engine | None, depth: int) -> bool:
    """An included template sees the loop's ``forloop`` too: read it (a name
    that is not a constant, or one that cannot be loaded, counts as positional)."""
    name = getattr(node.template, "var", None)
    if not isinstance(name, str) or depth > 8:
        return True
    try:
        included = (engine or django_engine()).get_template(name)
    except Exception:
        return True
    return _positional(list(included.nodelist), engine, depth + 1)


def _key_nodes(body: list[Node], loopvar: str) -> NodeList | None:
    """The nodes that render a row's id: the text after ``id="`` in the row's
    opening tag, the variables in it, and the text up to the closing quote."""
    start = next(
        (
            i
            for i, n in enumerate(body)
            if not (isinstance(n, TextNode) and not n.s.strip())
        ),
        None,
    )
    if start is None or not isinstance(body[start], TextNode):
        return None
    # The opening tag up to id=", variables in earlier attributes as "\0".
    seen = ""
    for index in range(start, len(body)):
        node = body[index]
        if isinstance(node, VariableNode):
            seen += "\0"
            continue
        if not isinstance(node, TextNode):
            return None
        opening = _ID_OPENING.match(seen + node.s)
        if opening is not None:
            offset = opening.end() - len(seen)
            return _id_value(
                node.s[offset:], opening.group(1), body[index + 1 :], loopvar
            )
        seen += node.s
        if ">" in seen.lstrip()[1:]:
            return None  # the tag ended without an id
    return None


def _id_value(
    rest: str, quote: str, after: list[Node], loopvar: str
) -> NodeList | None:
    """The id's nodes: ``rest`` of the text holding its opening quote, then the
    nodes ``after`` it up to the closing quote."""
    if quote in rest:
        return None  # a constant id: every row would have the same
    key = NodeList()
    if rest:
        key.append(TextNode(rest))
    for node in after:
        if isinstance(node, TextNode):
            if quote not in node.s:
                key.append(TextNode(node.s))
                continue
            before = node.s.split(quote, 1)[0]
            if before:
                key.append(TextNode(before))
            uses_item = any(
                isinstance(n, VariableNode) and _reads_root(n, loopvar) for n in key
            )
            return key if uses_item else None
        if not isinstance(node, VariableNode):
            return None  # a tag inside the id: not followed
        key.append(node)
    return None


def _reads_root(node: VariableNode, root: str) -> bool:
    lookups: Any = getattr(node.filter_expression.var, "lookups", None)
    return bool(lookups) and lookups[0] == root
