"""Build the dependency index from the project's templates.

At start-up every template the Django engines' loaders can list is read; those that
mention ``sse-swap`` are compiled, analysed, and their swapped blocks registered.
Problems become findings for the system checks and warnings in the log; none of them
stops the project from starting.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from django.template import Engine, TemplateSyntaxError, engines

from reactive_blocks.analysis.findings import Finding
from reactive_blocks.analysis.listing import list_templates, selected
from reactive_blocks.analysis.reads import (
    TemplateAnalysis,
    analyse_template,
    django_engine,
)
from reactive_blocks.analysis.swaps import SwapElement, find_swaps

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from reactive_blocks.index.core import BlockRef, DependencyIndex

__all__ = [
    "build_index",
    "list_templates",
    "register_from_sse_swaps",
    "register_template",
    "selected",
]

logger = logging.getLogger(__name__)


def register_template(
    index: DependencyIndex,
    template_name: str,
    block_names: Iterable[str] | None,
    dom_id_map: dict[str, str] | None,
    using: str | None,
) -> list[BlockRef]:
    analysis = analyse_template(template_name, django_engine(using))
    names = list(analysis.blocks) if block_names is None else list(block_names)
    missing = [name for name in names if name not in analysis.blocks]
    if missing:
        raise ValueError(
            f"Template {template_name!r} has no block {missing[0]!r}; its blocks are "
            f"{', '.join(map(repr, analysis.blocks)) or 'none'}."
        )
    dom_ids = dom_id_map or {}
    return [_register(index, analysis, name, dom_ids.get(name)) for name in names]


def register_from_sse_swaps(
    index: DependencyIndex,
    template_name: str,
    source: str | None,
    exclude_blocks: Iterable[str],
    using: str | None,
    partial: bool = False,
) -> list[BlockRef]:
    """See ``DependencyIndex.register_from_sse_swaps``; ``partial`` marks a template
    that other templates include (its stream is opened by the including page)."""
    if isinstance(exclude_blocks, str):
        raise TypeError(
            f"exclude_blocks must be a collection of block names, not a single str: "
            f"{exclude_blocks!r}."
        )
    excluded = set(exclude_blocks)
    analysis = analyse_template(template_name, django_engine(using))
    index.findings.extend(analysis.problems)
    found = _rendered_swaps(analysis, source)
    connected = any(find_swaps(t.source)[1] for t in analysis.templates)
    refs: list[BlockRef] = []
    for origin, swap in found:
        index.findings.extend(_swap_findings(origin, swap, connected or partial))
        for name in swap.names:
            if name in excluded:
                continue
            if name not in analysis.blocks:
                # A swap around another block is one mistake, said once (E001 of
                # _swap_findings), not once more per page that renders it.
                if swap.block is None or swap.block in swap.names:
                    index.findings.append(_missing_block(origin, swap, name))
                continue
            refs.append(
                _register(
                    index,
                    analysis,
                    name,
                    swap.dom_id,
                    swap.rows,
                    personal=swap.personal,
                )
            )
    index.findings.extend(_duplicate_ids(found))
    return refs


def _rendered_swaps(
    analysis: TemplateAnalysis, source: str | None
) -> list[tuple[str, SwapElement]]:
    """The swapped elements that rendering the page really produces.

    An element of a parent template is replaced when a more derived template
    overrides a block around it; a child's markup outside blocks is never rendered.
    """
    found = []
    for level, template in enumerate(analysis.templates):
        text = source if level == 0 and source is not None else template.source
        overriding = set().union(*(t.blocks for t in analysis.templates[:level]))
        for swap in find_swaps(text)[0]:
            if template.extends and not swap.enclosing:
                continue
            if overriding.intersection(swap.enclosing):
                continue
            found.append((template.name, swap))
    return found


def _missing_block(origin: str, swap: SwapElement, name: str) -> Finding:
    # Named after the template that has the element, so every page extending it
    # reports the same finding, which the checks then say once.
    return Finding(
        "E001",
        f"sse-swap={name!r} names no {{% block {name} %}} around it in {origin!r}.",
        hint=f"Add {{% block {name} %}} inside the element, or rename the sse-swap "
        f"value to the block it wraps ({swap.block!r})."
        if swap.block
        else f"Wrap the element's content in {{% block {name} %}}.",
        template=origin,
        line=swap.line,
    )


def _register(
    index: DependencyIndex,
    analysis: TemplateAnalysis,
    name: str,
    dom_id: str | None,
    rows: bool = True,
    *,
    personal: bool = False,
) -> BlockRef:
    """Register one block; ``personal``: its element says it is rendered per
    viewer (``data-reactive-personal``), whatever the analysis found."""
    block = analysis.blocks[name]
    if block.everything is not None:
        index.findings.append(
            Finding(
                "W004",
                f"Block {name!r} of {analysis.template_name!r} re-renders on every change: "
                f"{block.everything}.",
                hint="Pass the values the tag needs as arguments, or move it out of "
                "the block; a tag that reads only its arguments can be named in "
                'REACTIVE_BLOCKS["ARGUMENT_TAGS"].',
                template=block.template_name,
                line=block.line,
            )
        )
    if block.outside is not None:
        index.findings.append(
            Finding(
                "W013",
                f"Block {name!r} of {analysis.template_name!r} reads {block.outside}, "
                f"bound outside the block: a stream renders the block alone, without "
                f"it, so the update would differ from the page.",
                hint="Move the tag inside the block, or pass the value in the "
                "stream's context.",
                template=block.template_name,
                line=block.line,
            )
        )
    return index.register_block(
        analysis.template_name,
        name,
        block.paths,
        dom_id=dom_id,
        everything=block.everything,
        personal=block.personal or personal,
        rows=rows,
    )


def _swap_findings(
    origin: str, swap: SwapElement, connected_anywhere: bool
) -> Iterator[Finding]:
    if swap.dynamic:
        yield Finding(
            "W007",
            f"sse-swap={swap.value!r} is a template expression; reactive_blocks does not "
            f"guess which block it names.",
            hint="Write the block name literally, or register the block with "
            "register_template().",
            template=origin,
            line=swap.line,
        )
    if not swap.connected and not connected_anywhere:
        yield Finding(
            "W005",
            f"<{swap.tag} sse-swap={swap.value!r}> has no sse-connect or "
            f"{{% reactive_connect %}} element around it; htmx will ignore it.",
            hint="Put {% reactive_connect ... %} on an ancestor element.",
            template=origin,
            line=swap.line,
        )
    if swap.block is not None and swap.names and swap.block not in swap.names:
        yield Finding(
            "E001",
            f"sse-swap={swap.value!r} wraps {{% block {swap.block} %}}: the event "
            f"name and the block name must be the same.",
            hint=f"Rename one of them so both say {swap.block!r} (or {swap.names[0]!r}).",
            template=origin,
            line=swap.line,
        )


def _duplicate_ids(found: list[tuple[str, SwapElement]]) -> Iterator[Finding]:
    """Swapped elements of one rendered page that share an id."""
    seen: dict[str, tuple[str, SwapElement]] = {}
    for origin, swap in found:
        if swap.dom_id is None:
            continue
        first_origin, first = seen.setdefault(swap.dom_id, (origin, swap))
        if first is not swap:
            yield Finding(
                "W006",
                f"Two swapped elements share id={swap.dom_id!r} ({first_origin}:"
                f"{first.line} and {origin}:{swap.line}); browsers and htmx will only "
                f"find the first.",
                hint="Give every sse-swap element its own id.",
                template=origin,
                line=swap.line,
            )


# The project scan --------------------------------------------------------------------


def build_index(
    index: DependencyIndex, include: Iterable[str] = ("*",), exclude: Iterable[str] = ()
) -> DependencyIndex:
    """Register every swapped block of the project's templates into ``index``."""
    include, exclude = tuple(include), tuple(exclude)
    for backend in engines.all():
        engine = getattr(backend, "engine", None)
        if not isinstance(engine, Engine):
            continue
        texts = _read_candidates(index, engine, include, exclude)
        included = {
            m.group(1) for text in texts.values() for m in _INCLUDE.finditer(text)
        }
        for name in _live(texts):
            try:
                register_from_sse_swaps(
                    index, name, None, (), backend.name, partial=name in included
                )
            except TemplateSyntaxError as exc:
                _broken(index, name, _error_line(exc), str(exc))
            except Exception as exc:  # a broken template must not stop start-up
                _broken(index, name, None, f"{type(exc).__name__}: {exc}")
    return index


# Static ``{% extends "x" %}`` / ``{% include "x" %}`` names, read without compiling.
_EXTENDS = re.compile(r"""\{%\s*extends\s+["']([^"']+)["']""")
_INCLUDE = re.compile(r"""\{%\s*include\s+["']([^"']+)["']""")


def _read_candidates(
    index: DependencyIndex,
    engine: Engine,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
) -> dict[str, str]:
    """Texts of the selected templates that swap blocks, extend or include."""
    texts: dict[str, str] = {}
    for name, path in list_templates(engine):
        if not selected(name, include, exclude):
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            _broken(index, name, None, f"cannot be read: {exc}")
            continue
        if (
            b"sse-swap" not in data
            and b"extends" not in data
            and b"include" not in data
        ):
            continue  # images, unrelated templates: not even decoded
        try:
            texts[name] = data.decode(engine.file_charset)
        except UnicodeDecodeError as exc:
            if b"sse-swap" in data:
                _broken(index, name, None, f"cannot be read: {exc}")
    return texts


def _live(texts: dict[str, str]) -> list[str]:
    """Templates with sse-swap elements, in themselves or in a template they extend."""
    parents = {
        name: m.group(1) for name, text in texts.items() if (m := _EXTENDS.search(text))
    }
    memo: dict[str, bool] = {}

    def live(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name not in memo:
            text = texts.get(name)
            parent = parents.get(name)
            if text is not None and "sse-swap" in text:
                memo[name] = True
            elif parent == name:
                memo[name] = (
                    True  # extends a same-named template: let the analysis look
                )
            elif parent is None or parent in seen:
                memo[name] = False
            else:
                memo[name] = live(parent, seen | {name})
        return memo[name]

    return [name for name in texts if live(name)]


def _broken(index: DependencyIndex, name: str, line: int | None, detail: str) -> None:
    where = f"{name}:{line}" if line else name
    logger.warning("reactive_blocks skipped template %s: %s", where, detail)
    index.findings.append(
        Finding(
            "W008",
            f"Template {name!r} was not indexed: {detail}",
            hint="Fix the template; its live blocks stay static until then.",
            template=name,
            line=line,
        )
    )


def _error_line(exc: TemplateSyntaxError) -> int | None:
    # Django's parser attaches the offending token, which knows its line.
    lineno = getattr(getattr(exc, "token", None), "lineno", None)
    return lineno if isinstance(lineno, int) else None
