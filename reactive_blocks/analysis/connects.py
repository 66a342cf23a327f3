"""``{% reactive_connect %}`` uses checked against the stream routes, before a page fails.

A wrong route name or missing URL arguments would only show when the page renders
(``NoReverseMatch``); reading the templates' text finds them at start-up. Only a
literal route name can be checked; one given by a variable is left to the render.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.urls import get_resolver

from reactive_blocks.analysis.findings import Finding
from reactive_blocks.analysis.listing import list_templates, selected
from reactive_blocks.analysis.reads import django_engine
from reactive_blocks.conf import conf

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["connect_findings", "page_connects"]

TAG = re.compile(
    r"\{%\s*reactive_connect\s+(?P<quote>[\"'])(?P<name>[^\"']+)(?P=quote)"
    r"(?P<args>[^%]*)%\}"
)
# {% reactive_connect %} with no argument: the page's own stream.
PAGE_TAG = re.compile(r"\{%\s*reactive_connect\s*%\}")
ARGUMENT = re.compile(r"(\w+)\s*=")
# Text that is not rendered as tags: a comment block, verbatim, {# ... #}.
UNRENDERED = re.compile(
    r"\{%\s*comment\b.*?%\}.*?\{%\s*endcomment\s*%\}"
    r"|\{%\s*verbatim\b.*?%\}.*?\{%\s*endverbatim\b.*?%\}"
    r"|\{#.*?#\}",
    re.DOTALL,
)


def connect_findings(urlconf: str | None) -> Iterator[Finding]:
    """E003 for every ``{% reactive_connect %}`` that names no stream route of
    ``urlconf``, or gives it other URL arguments than the route takes; one E003 in
    all when there is no ``urlconf`` to check them against."""
    routes = _routes(urlconf) if urlconf else None
    for template, text in _connecting_templates():
        for match in TAG.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            if ":" in match["name"]:
                continue  # a namespaced route: left to the render to resolve
            problem = _problem(routes, urlconf, match["name"], match["args"])
            if problem is not None:
                message, hint = problem
                yield Finding("E003", message, hint=hint, template=template, line=line)
                if routes is None:
                    return  # the same missing setting, said once


def page_connects() -> list[str]:
    """The templates that open their page's own stream (``{% reactive_connect %}``
    with no argument)."""
    return [t for t, text in _connecting_templates() if PAGE_TAG.search(text)]


def _connecting_templates() -> Iterator[tuple[str, str]]:
    """(name, rendered text) of the scanned templates using ``reactive_connect``."""
    include, exclude = conf.SCAN_INCLUDE, conf.SCAN_EXCLUDE
    for template, path in list_templates(django_engine()):
        if not selected(template, include, exclude):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue  # the scan reports unreadable templates (W008)
        if b"reactive_connect" in data:
            yield template, _without_comments(data.decode(errors="replace"))


def _without_comments(text: str) -> str:
    """``text`` with its unrendered parts blanked, lines kept where they were."""
    return UNRENDERED.sub(lambda m: "\n" * m.group().count("\n"), text)


def _routes(urlconf: str) -> dict[str, list[frozenset[str]]]:
    """Route name -> the sets of URL arguments each of its patterns takes."""
    routes: dict[str, list[frozenset[str]]] = {}
    try:
        reverse_dict = get_resolver(urlconf).reverse_dict
    except Exception:
        return routes  # an unimportable URLconf: reactive_check says so elsewhere
    for key in reverse_dict:
        if isinstance(key, str):
            for possibilities, *_ in reverse_dict.getlist(key):
                for _, params in possibilities:
                    routes.setdefault(key, []).append(frozenset(params))
    return routes


def _problem(
    routes: dict[str, list[frozenset[str]]] | None,
    urlconf: str | None,
    name: str,
    args: str,
) -> tuple[str, str] | None:
    given = frozenset(ARGUMENT.findall(args))
    if routes is None:
        return (
            f'{{% reactive_connect "{name}" %}} needs REACTIVE_BLOCKS["URLCONF"], '
            f"which is not set.",
            "Set REACTIVE_BLOCKS['URLCONF'] to the module whose urlpatterns hold "
            "your stream_path() routes.",
        )
    if name not in routes:
        known = ", ".join(sorted(routes)) or "none"
        return (
            f'{{% reactive_connect "{name}" %}} names no stream route in {urlconf} '
            f"(its routes: {known}).",
            f"Use the name= of a stream_path() in {urlconf}, or add one named "
            f"{name!r}.",
        )
    if given in routes[name]:
        return None
    wanted = " or ".join(
        "(" + ", ".join(sorted(params)) + ")" for params in routes[name]
    )
    shown = ", ".join(sorted(given)) or "none"
    return (
        f'{{% reactive_connect "{name}" %}} gives the URL arguments ({shown}); '
        f"the route takes {wanted}.",
        f"Pass each argument of the route by name, e.g. "
        f'{{% reactive_connect "{name}" '
        + " ".join(f"{p}=..." for p in sorted(routes[name][0]))
        + " %}.",
    )
