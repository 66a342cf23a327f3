"""System checks: the contract between templates, the index and emitted changes.

Registered under the ``reactive_blocks`` tag, so ``manage.py check`` runs them and
``manage.py reactive_check`` runs only them.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from reactive_blocks.analysis.connects import connect_findings, page_connects
from reactive_blocks.analysis.reads import analyse_template
from reactive_blocks.conf import conf
from reactive_blocks.runtime import get_bus, get_index
from reactive_blocks.stream_checks import (
    followed_by_stream_classes,
    page_streams_served,
    request_processor,
    stream_classes,
    uses_page_streams,
)
from reactive_blocks.view_checks import view_checks

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from django.apps import AppConfig

    from reactive_blocks.analysis.findings import Finding
    from reactive_blocks.index.core import DependencyIndex

__all__ = [
    "CHECK_IDS",
    "TAG",
    "check_deployment",
    "check_reactive_contract",
    "connection_scopes",
    "emitted_paths",
]

TAG = "reactive_blocks"

# Every check this app reports, by id. Ids are never reused for another meaning.
CHECK_IDS = {
    "E001": "reactive_block: a registered or sse-swap block does not exist",
    "E002": "reactive_settings: REACTIVE_BLOCKS cannot be used (a bad value or bus)",
    "E003": "reactive_connect: {% reactive_connect %} names no stream route, or the wrong URL arguments",
    "E004": "reactive_stream_template: a stream class's template does not exist or has no sse-swap block",
    "E005": "reactive_request: a page streams itself but templates lack the request context processor",
    "W001": "reactive_cycle: derived paths form a cycle",
    "W002": "reactive_paths: an emitted (declared or tracked) path is read by no block",
    "W003": "reactive_audience: audience-filtered scope without connection-aware stream",
    "W004": "reactive_unanalysable: a block's dependencies could not be analysed (it reads everything)",
    "W005": "reactive_unconnected: an sse-swap element has no sse-connect ancestor",
    "W006": "reactive_duplicate_id: two swapped elements share an id",
    "W007": "reactive_dynamic_swap: an sse-swap value is a template expression",
    "W008": "reactive_template: a template could not be indexed",
    "W009": "reactive_deploy_asgi: the project is not served over ASGI",
    "W010": "reactive_deploy_gzip: GZipMiddleware would buffer the event stream",
    "W011": "reactive_middleware: streams are routed but ReactiveMiddleware is missing",
    "W012": "reactive_deploy_bus: the bus reaches one process only",
    "W013": "reactive_outside: a live block reads a name bound by a tag around it",
    "W014": "reactive_stream_scope: no tracked model emits to a stream class's scope",
    "W015": "reactive_asgi: ASGI_APPLICATION does not serve the streams of live pages",
    "W016": "reactive_unprovided: a live page's block reads a name its view does not give",
    "W017": "reactive_unfollowed: a tracked model that no page follows",
}
GZIP_MIDDLEWARE = "django.middleware.gzip.GZipMiddleware"


@checks.register(TAG)
def check_reactive_contract(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    try:
        get_bus()
        index = get_index()
        urlconf = conf.URLCONF
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Fix REACTIVE_BLOCKS in settings (see the settings docs).",
                obj="settings.REACTIVE_BLOCKS",
                id="reactive_blocks.E002",
            )
        ]
    return [
        # A base template's problem is found once per page extending it.
        *(_message(finding) for finding in dict.fromkeys(index.findings)),
        *(_message(finding) for finding in connect_findings(urlconf)),
        *_missing_blocks(index),
        *_cycles(index),
        *_unread_paths(index),
        *_audience_without_connections(),
        *_middleware(),
        *_single_process_bus(),
        *stream_classes(index),
        *_page_streams(),
        *view_checks(index, followed_by_stream_classes()),
    ]


@checks.register(TAG, deploy=True)
def check_deployment(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if not getattr(settings, "ASGI_APPLICATION", None):
        messages.append(
            checks.Warning(
                "Live streams need an ASGI server, but ASGI_APPLICATION is not set.",
                hint="Serve the project with daphne and set ASGI_APPLICATION to your "
                "asgi.py application (see the deployment docs).",
                obj="settings.ASGI_APPLICATION",
                id="reactive_blocks.W009",
            )
        )
    if GZIP_MIDDLEWARE in getattr(settings, "MIDDLEWARE", ()):
        messages.append(
            checks.Warning(
                "GZipMiddleware compresses responses, and a compressed event stream is "
                "buffered: browsers receive changes late or in bursts.",
                hint="Remove GZipMiddleware, or compress at a proxy that skips "
                "text/event-stream.",
                obj="settings.MIDDLEWARE",
                id="reactive_blocks.W010",
            )
        )
    return messages


def _single_process_bus() -> Iterable[checks.CheckMessage]:
    """W012: in production, changes made in other processes must reach pages."""
    try:
        bus = get_bus()
    except ImproperlyConfigured:
        return  # reported as E002 by the contract check
    if bus.crosses_processes:
        return
    yield checks.Warning(
        f"The bus is {type(bus).__name__}, which lives in one process: changes "
        f"saved in other processes (another server process, a worker, a "
        f"management command, manage.py shell) never reach open pages.",
        hint="Leave REACTIVE_BLOCKS['BUS'] unset for the default DatabaseBus (the "
        "processes of one machine), or use reactive_blocks.RedisBus (many "
        "machines); silence reactive_blocks.W012 if the site runs in one process "
        "and data changes only there.",
        obj="settings.REACTIVE_BLOCKS",
        id="reactive_blocks.W012",
    )


def emitted_paths() -> set[str]:
    """Paths that some block should read: the setting's, and the tracked models'
    (each listed field of a model tracked with ``fields=[...]``, else its prefix)."""
    from reactive_blocks.tracking.registry import trackers

    paths = set(conf.EMITTED_PATHS)
    for tracker in trackers().values():
        paths |= tracker.declared_paths()
    return paths


def connection_scopes() -> set[str]:
    """Scopes served by connection-aware streams: ``REACTIVE_BLOCKS['CONNECTION_SCOPES']``."""
    return set(conf.CONNECTION_SCOPES)


def _message(finding: Finding) -> checks.CheckMessage:
    level = checks.Error if finding.is_error else checks.Warning
    return level(
        finding.message,
        hint=finding.hint,
        obj=finding.location or "REACTIVE_BLOCKS",
        id=f"reactive_blocks.{finding.id}",
    )


def _missing_blocks(index: DependencyIndex) -> Iterable[checks.CheckMessage]:
    """E001 for blocks registered by hand that their template does not have."""
    by_template: dict[str, list[str]] = {}
    for ref in index.blocks():
        by_template.setdefault(ref.template_name, []).append(ref.block_name)
    for template_name, names in by_template.items():
        try:
            available = analyse_template(template_name).blocks
        except Exception as exc:
            yield checks.Error(
                f"Blocks are registered for template {template_name!r}, which cannot "
                f"be loaded: {exc}",
                hint="Fix the template name or the template.",
                obj=template_name,
                id="reactive_blocks.E001",
            )
            continue
        for name in names:
            if name not in available:
                yield checks.Error(
                    f"Block {name!r} is registered for {template_name!r}, which has no "
                    f"such block.",
                    hint=f"Its blocks are {', '.join(map(repr, available)) or 'none'}.",
                    obj=template_name,
                    id="reactive_blocks.E001",
                )


def _cycles(index: DependencyIndex) -> Iterable[checks.CheckMessage]:
    for cycle in index.cycles():
        yield checks.Warning(
            f"Derived paths form a cycle: {' -> '.join(cycle)}.",
            hint="A change anywhere on it re-renders every block on it; break the "
            "cycle with index.derive().",
            obj="DependencyIndex",
            id="reactive_blocks.W001",
        )


def _unread_paths(index: DependencyIndex) -> Iterable[checks.CheckMessage]:
    for path in sorted(emitted_paths()):
        readers = [
            ref
            for ref in index.affected_blocks(frozenset({path}))
            if index.reads_everything(ref) is None
        ]
        if not readers:
            yield checks.Warning(
                f"Path {path!r} is emitted, but no registered block reads it.",
                hint="Check the spelling against the templates' variables, or stop "
                "emitting it. `manage.py reactive_check --explain PATH` shows lookups.",
                obj=path,
                id="reactive_blocks.W002",
            )


MIDDLEWARE = "reactive_blocks.middleware.ReactiveMiddleware"
# Its first home, still in many settings files (deprecated, still working).
OLD_MIDDLEWARE = "reactive_blocks.origin.ReactiveMiddleware"


def _page_streams() -> Iterable[checks.CheckMessage]:
    """W015, for projects with a page that streams itself."""
    if page_connects():
        yield from request_processor()
        yield from page_streams_served()


def _middleware() -> Iterable[checks.CheckMessage]:
    if (
        conf.URLCONF
        and not {MIDDLEWARE, OLD_MIDDLEWARE} & set(getattr(settings, "MIDDLEWARE", ()))
        and not uses_page_streams()  # get_asgi_application() does its work
    ):
        yield checks.Warning(
            "Streams are routed (REACTIVE_BLOCKS['URLCONF']) but ReactiveMiddleware is "
            "not installed: the author's tab is echoed its own changes, and a change "
            "committed while a page renders can be missed until the next one.",
            hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE, after the session and "
            "authentication middleware.",
            obj="settings.MIDDLEWARE",
            id="reactive_blocks.W011",
        )


def _audience_without_connections() -> Iterable[checks.CheckMessage]:
    served = connection_scopes()
    for scope in sorted(conf.AUDIENCE_SCOPES):
        if not any(
            fnmatch.fnmatchcase(scope, pattern) or fnmatch.fnmatchcase(pattern, scope)
            for pattern in served
        ):
            yield checks.Warning(
                f"Scope {scope!r} receives audience-filtered events, but no stream "
                f"that identifies its users serves it: nobody will receive them.",
                hint="Serve the scope with a stream that passes a ConnectionInfo, and "
                "list it in REACTIVE_BLOCKS['CONNECTION_SCOPES'].",
                obj=scope,
                id="reactive_blocks.W003",
            )
