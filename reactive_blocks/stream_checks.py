"""System checks of how streams are served: stream classes that could never update
their page, and live pages that nothing serves.

Tried as a user would: a ``template_name`` that does not exist, or a consumer whose
scope no tracked model emits to, passed every check and the page simply never
updated. These say so before a page does.
"""

from __future__ import annotations

import fnmatch
import string
import uuid
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import checks
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from reactive_blocks.conf import conf
from reactive_blocks.streams.consumer import ReactiveStreamConsumer
from reactive_blocks.tracking.page_scopes import model_scope
from reactive_blocks.tracking.registry import trackers

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactive_blocks.index.core import DependencyIndex

__all__ = ["page_streams_served", "request_processor", "stream_classes"]

REQUEST_PROCESSOR = "django.template.context_processors.request"

# A URL argument of each converter type, to ask a stream class for its scope.
SAMPLES: dict[str, Any] = {"int": 1, "str": "x", "slug": "x", "path": "x"}


def _routes() -> list[tuple[type[ReactiveStreamConsumer], Any]]:
    """(stream class, URL pattern) of each route of REACTIVE_BLOCKS["URLCONF"]."""
    if conf.URLCONF is None:
        return []
    try:
        patterns = list(getattr(import_module(conf.URLCONF), "urlpatterns", []))
    except ImportError:
        return []  # E003 (the connect check) says what is wrong with the module
    routes = []
    for pattern in patterns:
        consumer = getattr(getattr(pattern, "callback", None), "consumer_class", None)
        if isinstance(consumer, type) and issubclass(consumer, ReactiveStreamConsumer):
            routes.append((consumer, pattern))
    return routes


def followed_by_stream_classes() -> set[Any]:
    """The tracked models whose scopes some stream class follows (those with a
    callable scope count: what it gives cannot be read)."""
    scopes = [_sample_scope(consumer, pattern) for consumer, pattern in _routes()]
    followed = set()
    for model, tracker in trackers().items():
        if not isinstance(tracker.scope, str):
            followed.add(model)
            continue
        pattern = _pattern(tracker.scope)
        if any(s is not None and fnmatch.fnmatchcase(s, pattern) for s in scopes):
            followed.add(model)
    return followed


def stream_classes(index: DependencyIndex) -> Iterable[checks.CheckMessage]:
    """E004 for a stream class whose page cannot be streamed, W014 for one whose
    scope no tracked model emits to."""
    routes = _routes()
    emitted = _emitted_patterns() if routes else None
    for consumer, pattern in routes:
        label = f"{consumer.__module__}.{consumer.__qualname__}"
        yield from _template(consumer, label, index)
        scope = _sample_scope(consumer, pattern)
        if (
            scope is not None
            and emitted is not None
            and not any(
                fnmatch.fnmatchcase(scope, emitted_scope) for emitted_scope in emitted
            )
        ):
            yield checks.Warning(
                f"{label} follows scope {scope!r} (for sample URL arguments), and no "
                f"tracked model emits to a scope like it: its page never updates.",
                hint="Make get_scope() return what track(scope=...) gives the "
                "model's rows (e.g. 'doc-{pk}' gives 'doc-1'), or silence "
                "reactive_blocks.W014 if your code emits to it with emit().",
                obj=label,
                id="reactive_blocks.W014",
            )


def _template(
    consumer: type[ReactiveStreamConsumer], label: str, index: DependencyIndex
) -> Iterable[checks.CheckMessage]:
    name = consumer.template_name
    if name is None:
        return  # chosen per request by get_template_name()
    try:
        get_template(name)
    except TemplateDoesNotExist:
        yield checks.Error(
            f"{label}.template_name is {name!r}, which no template loader finds.",
            hint="Name the template the page is rendered from, as the view does.",
            obj=label,
            id="reactive_blocks.E004",
        )
        return
    if not index.blocks(name):
        yield checks.Error(
            f"{label}.template_name is {name!r}, which has no sse-swap block: "
            f"the stream has nothing to send.",
            hint='Wrap each live {% block %} in an element with sse-swap="<block '
            'name>", or name the template that has them.',
            obj=label,
            id="reactive_blocks.E004",
        )


def _sample_scope(consumer: type[ReactiveStreamConsumer], pattern: Any) -> str | None:
    """What ``get_scope()`` gives for sample URL arguments; None if it cannot say."""
    converters = getattr(getattr(pattern, "pattern", None), "converters", {})
    kwargs = {}
    for name, converter in converters.items():
        kind = type(converter).__name__.removesuffix("Converter").lower()
        kwargs[name] = uuid.UUID(int=1) if kind == "uuid" else SAMPLES.get(kind, 1)
    instance = consumer()
    vars(instance)["scope"] = {"url_route": {"kwargs": kwargs, "args": ()}}
    try:
        scope: object = instance.get_scope()
    except Exception:
        return None
    return scope if isinstance(scope, str) else None


def _emitted_patterns() -> list[str] | None:
    """Shell patterns of every scope tracked models emit to; None if a callable
    scope makes that unknowable."""
    patterns = []
    for model, tracker in trackers().items():
        if not isinstance(tracker.scope, str):
            return None
        patterns.append(_pattern(tracker.scope))
        patterns += [model_scope(model), f"{model_scope(model)}:*"]
    return patterns


def _pattern(scope: str) -> str:
    """A format-string scope as a shell pattern: 'doc-{pk}' is 'doc-*'."""
    fields = string.Formatter().parse(scope)
    return "".join(f"{text}{'*' if name else ''}" for text, name, _, _ in fields)


def page_streams_served() -> Iterable[checks.CheckMessage]:
    """W015 when ASGI_APPLICATION does not serve the streams of live pages."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not dotted:
        return  # W009 (--deploy) says so
    try:
        application = import_string(dotted)
    except Exception as exc:
        yield checks.Warning(
            f"ASGI_APPLICATION {dotted!r} cannot be imported: {exc}",
            hint="Fix asgi.py; `application = get_asgi_application()` from "
            "reactive_blocks.asgi is all it needs.",
            obj="settings.ASGI_APPLICATION",
            id="reactive_blocks.W015",
        )
        return
    if not _serves_pages(application):
        yield checks.Warning(
            f"ASGI_APPLICATION {dotted!r} is not made by "
            f"reactive_blocks.asgi.get_asgi_application(): pages using "
            f"{{% reactive_connect %}} with no argument get no stream (their stream "
            f"URL {conf.PAGE_STREAM_PATH} answers 404), and a tab's own changes are "
            f"echoed back to it unless ReactiveMiddleware is installed.",
            hint="In asgi.py: `from reactive_blocks.asgi import get_asgi_application` "
            "and `application = get_asgi_application()`.",
            obj="settings.ASGI_APPLICATION",
            id="reactive_blocks.W015",
        )


def _serves_pages(application: Any) -> bool:
    return getattr(application, "reactive_blocks_pages", False) is True


def uses_page_streams() -> bool:
    """Whether the project's own ASGI application is ``get_asgi_application()``'s."""
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(dotted, str) or not dotted:
        return False
    try:
        return _serves_pages(import_string(dotted))
    except Exception:
        return False


def request_processor() -> Iterable[checks.CheckMessage]:
    """E005: ``{% reactive_connect %}`` with no argument needs the page's request."""
    for backend in settings.TEMPLATES:
        if backend.get("BACKEND") != "django.template.backends.django.DjangoTemplates":
            continue
        options = backend.get("OPTIONS") or {}
        processors = (
            options.get("context_processors", []) if isinstance(options, dict) else []
        )
        if REQUEST_PROCESSOR not in processors:
            yield checks.Error(
                "A template opens its page's own stream ({% reactive_connect %}), "
                f"but the template engine has no {REQUEST_PROCESSOR!r} context "
                f"processor: the tag cannot see the page's request, and the page "
                f"fails to render.",
                hint=f"Add {REQUEST_PROCESSOR!r} to TEMPLATES[...]['OPTIONS']"
                "['context_processors'] (django-admin startproject has it).",
                obj="settings.TEMPLATES",
                id="reactive_blocks.E005",
            )
