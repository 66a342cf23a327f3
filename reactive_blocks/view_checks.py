"""System checks of live pages against the views that render them.

A live page's blocks are rendered from what its view puts in the context, so
reading the project's URLconf says two things before a page does: a block that
reads a name its view never provides (it would render empty, on the page and on
every update), and a tracked model that no page follows (its saves reach nobody).
Views are read, not run: a function view's ``render()`` call with a dict literal,
a generic view's attributes. Where a view cannot be read that way, nothing is
said about it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import checks
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.generic.base import ContextMixin, TemplateResponseMixin
from django.views.generic.detail import SingleObjectMixin
from django.views.generic.edit import FormMixin
from django.views.generic.list import MultipleObjectMixin

from reactive_blocks.analysis.connects import PAGE_TAG
from reactive_blocks.analysis.reads import analyse_template

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from reactive_blocks.index.core import DependencyIndex

__all__ = ["unfollowed_models", "unprovided_names", "view_checks"]

# What the context processors Django ships give a template.
PROCESSOR_NAMES = {
    "django.template.context_processors.request": {"request"},
    "django.contrib.auth.context_processors.auth": {"user", "perms"},
    "django.contrib.messages.context_processors.messages": {
        "messages",
        "DEFAULT_MESSAGE_LEVELS",
    },
    "django.template.context_processors.csrf": {"csrf_token"},
    "django.template.context_processors.debug": {"debug", "sql_queries"},
    "django.template.context_processors.i18n": {
        "LANGUAGES",
        "LANGUAGE_CODE",
        "LANGUAGE_BIDI",
    },
    "django.template.context_processors.static": {"STATIC_URL"},
    "django.template.context_processors.media": {"MEDIA_URL"},
    "django.template.context_processors.tz": {"TIME_ZONE"},
}
# A RequestContext always has these (csrf is built in), and templates bind these.
ALWAYS = {"csrf_token", "block", "forloop", "True", "False", "None"}
RENDERERS = {"render": 1, "TemplateResponse": 1, "render_to_response": 0}


@dataclass
class ViewPage:
    """A template a view renders, and what the view gives it."""

    view: str  # dotted path
    template: str
    names: frozenset[str] | None  # None: not known from reading the view
    models: set[type[models.Model]] = field(default_factory=set)


def view_checks(
    index: DependencyIndex, followed_elsewhere: set[Any]
) -> list[checks.CheckMessage]:
    """W016 and W017, reading the project's views once for both."""
    pages = list(_live_pages())
    return [
        *unprovided_names(index, pages),
        *unfollowed_models(followed_elsewhere, pages),
    ]


def unprovided_names(
    index: DependencyIndex, pages: list[ViewPage]
) -> Iterable[checks.CheckMessage]:
    """W016: a live page's block reads a name neither its view nor a context
    processor gives."""
    given = _processor_names()
    if given is None:
        return  # a context processor of the project's own: anything may come
    for page in pages:
        if page.names is None:
            continue
        known = page.names | given | ALWAYS
        for ref in index.blocks(page.template):
            reads = index.block_dependencies(ref.template_name, ref.block_name)
            for name in sorted({path.split(".", 1)[0] for path in reads} - known):
                yield checks.Warning(
                    f"Block {ref.block_name!r} of {page.template!r} reads {name!r}, "
                    f"which {page.view} does not put in the context and no context "
                    f"processor gives: it renders empty, and so does every update.",
                    hint=f"Give {name!r} in the view's context, or fix the name "
                    f"(the view gives {', '.join(sorted(page.names)) or 'nothing'}).",
                    obj=f"{page.template}:{ref.block_name}",
                    id="reactive_blocks.W016",
                )


def unfollowed_models(
    followed_elsewhere: set[Any], pages: list[ViewPage]
) -> Iterable[checks.CheckMessage]:
    """W017: a tracked model no live page (and no stream class) follows."""
    from reactive_blocks.tracking.registry import trackers

    if not pages or any(not page.models and page.names is None for page in pages):
        return  # no live page, or one whose view cannot be read
    followed = set(followed_elsewhere)
    for page in pages:
        followed |= page.models
    # Keys are model classes (a test may register anything: only models count).
    keys: list[object] = list(trackers())
    tracked = [m for m in keys if isinstance(m, type) and issubclass(m, models.Model)]
    # A row pointing at a followed row reaches its page (doc.comments.all).
    changed = True
    while changed:
        changed = False
        for model in tracked:
            if model in followed:
                continue
            if any(
                getattr(f, "related_model", None) in followed
                for f in model._meta.concrete_fields
                if f.is_relation
            ):
                followed.add(model)
                changed = True
    for model in tracked:
        if model not in followed and not any(issubclass(model, f) for f in followed):
            label = model._meta.label
            yield checks.Warning(
                f"{label} is tracked, but no live page's view puts it (an instance or "
                f"a queryset) in its context and no stream class follows its scope: "
                f"its saves reach no page.",
                hint="Show it on a page whose template has {% reactive_connect %}, "
                "or stop tracking it; silence reactive_blocks.W017 if a page shows "
                "it in a way these checks cannot read.",
                obj=label,
                id="reactive_blocks.W017",
            )


def _processor_names() -> set[str] | None:
    names: set[str] = set()
    for backend in settings.TEMPLATES:
        options: Any = backend.get("OPTIONS") or {}
        for processor in options.get("context_processors", []):
            if processor not in PROCESSOR_NAMES:
                return None
            names |= PROCESSOR_NAMES[processor]
    return names


def _live_pages() -> Iterator[ViewPage]:
    """The pages served by the project's views whose template streams itself."""
    seen: dict[str, bool] = {}
    for callback in _callbacks(get_resolver().url_patterns):
        for page in _read_view(callback):
            if page.template not in seen:
                seen[page.template] = _streams_itself(page.template)
            if seen[page.template]:
                yield page


def _streams_itself(template: str) -> bool:
    try:
        analysis = analyse_template(template)
    except Exception:
        return False  # reported by the scan (W008) or by the view when rendered
    return any(PAGE_TAG.search(t.source) for t in analysis.templates)


def _callbacks(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            yield pattern.callback


def _read_view(callback: Any) -> list[ViewPage]:
    view_class = getattr(callback, "view_class", None)
    if isinstance(view_class, type) and issubclass(view_class, TemplateResponseMixin):
        page = _generic(view_class)
        return [page] if page is not None else []
    function = inspect.unwrap(callback)
    if inspect.isfunction(function):
        return list(_function(function))
    return []


def _generic(view: type[TemplateResponseMixin]) -> ViewPage | None:
    template = getattr(view, "template_name", None)
    if not isinstance(template, str):
        return None
    names = {"view", *(getattr(view, "extra_context", None) or {})}
    model = _model_of(view)
    if issubclass(view, SingleObjectMixin):
        names |= {"object", view.context_object_name or _model_name(model)}
    if issubclass(view, MultipleObjectMixin):
        names |= {"object_list", "paginator", "page_obj", "is_paginated"}
        names.add(view.context_object_name or f"{_model_name(model)}_list")
    if issubclass(view, FormMixin):
        names.add("form")
    hook = getattr(view, "get_context_data", ContextMixin.get_context_data)
    own = not hook.__module__.startswith("django.")  # it adds names of its own
    dotted = f"{view.__module__}.{view.__qualname__}"
    found = None if own else frozenset(names)
    return ViewPage(dotted, template, found, {model} if model else set())


def _model_of(view: type[Any]) -> type[models.Model] | None:
    model = getattr(view, "model", None)
    queryset = getattr(view, "queryset", None)
    if model is None and queryset is not None:
        model = getattr(queryset, "model", None)
    return (
        model if isinstance(model, type) and issubclass(model, models.Model) else None
    )


def _model_name(model: type[models.Model] | None) -> str:
    return model._meta.model_name or "" if model is not None else ""


def _function(function: Any) -> Iterator[ViewPage]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return
    # Only classes: a module-level list or dict is unhashable, and no model.
    used = [
        function.__globals__.get(node.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
    ]
    found = {m for m in used if isinstance(m, type) and issubclass(m, models.Model)}
    dotted = f"{function.__module__}.{function.__qualname__}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name not in RENDERERS:
            continue
        position = RENDERERS[name]
        template = node.args[position] if len(node.args) > position else None
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            continue
        context = next(
            (k.value for k in node.keywords if k.arg == "context"),
            node.args[position + 1] if len(node.args) > position + 1 else None,
        )
        names: frozenset[str] | None = None
        if context is None:
            names = frozenset()
        elif isinstance(context, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str)
            for k in context.keys
        ):
            names = frozenset(
                str(k.value) for k in context.keys if isinstance(k, ast.Constant)
            )
        yield ViewPage(dotted, template.value, names, found)
