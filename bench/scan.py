"""Start-up scan benchmark: index a generated tree of 1,000 live templates.

Run with ``make bench-scan`` or ``python bench/scan.py``. Each run starts with fresh
template engines (nothing cached), like a process starting. Prints the median of
several runs. Target (issue 3): under 2 s on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import django
from django.conf import settings

TEMPLATES = 1_000
PARTIALS = 20

BASE = """<!doctype html>
<html><head><title>{% block page_title %}{{ site.name }}{% endblock %}</title></head>
<body hx-ext="sse" sse-connect="/live/">
<nav>{% block nav %}{% for link in menu.links %}<a href="{{ link.url }}">{{ link.label }}</a>{% endfor %}{% endblock %}</nav>
{% block body %}{% endblock %}
</body></html>
"""

PARTIAL = """<article class="card">
  <h3>{{ item.title|default:"Untitled" }}</h3>
  {% if item.summary %}<p>{{ item.summary|truncatewords:30 }}</p>{% endif %}
  {% for tag in item.tags %}<span>{{ tag.name }}</span>{% empty %}<em>no tags</em>{% endfor %}
</article>
"""

PAGE = """{{% extends "base.html" %}}
{{% load i18n %}}
{{% block page_title %}}{{{{ obj{n}.title }}}} | {{{{ block.super }}}}{{% endblock %}}
{{% block body %}}
<h1 id="title-{n}" sse-swap="title">{{% block title %}}{{{{ obj{n}.title }}}}{{% endblock %}}</h1>
<section id="items-{n}" sse-swap="items">{{% block items %}}
  {{% for item in obj{n}.items %}}{{% include "partials/card{p}.html" %}}{{% endfor %}}
{{% endblock %}}</section>
<aside id="stats-{n}" sse-swap="stats">{{% block stats %}}
  {{% with total=obj{n}.items|length owner=obj{n}.owner %}}
    {{% blocktranslate count counter=total %}}{{{{ counter }}}} item{{% plural %}}{{{{ counter }}}} items{{% endblocktranslate %}}
    {{% if owner.is_active and not obj{n}.archived %}}{{{{ owner.name }}}}{{% endif %}}
  {{% endwith %}}
{{% endblock %}}</aside>
<footer>{{% block footer %}}{{{{ obj{n}.updated_at|date:"Y-m-d" }}}}{{% endblock %}}</footer>
{{% endblock %}}
"""


def generate(root: Path) -> None:
    (root / "partials").mkdir(parents=True)
    (root / "pages").mkdir()
    (root / "base.html").write_text(BASE)
    for p in range(PARTIALS):
        (root / "partials" / f"card{p}.html").write_text(PARTIAL)
    for n in range(TEMPLATES):
        (root / "pages" / f"page{n}.html").write_text(PAGE.format(n=n, p=n % PARTIALS))


def configure(root: Path) -> None:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [str(root)],
            }
        ],
        USE_I18N=True,
    )
    django.setup()


def scan_once() -> tuple[float, int, int]:
    from django.core.signals import setting_changed

    from reactive_blocks.index import DependencyIndex
    from reactive_blocks.index.scan import build_index

    # Fresh engines and loaders: nothing compiled is reused between runs.
    setting_changed.send(sender=None, setting="TEMPLATES", value=None, enter=False)
    start = time.perf_counter()
    index = build_index(DependencyIndex())
    elapsed = time.perf_counter() - start
    return elapsed, len(index.blocks()), len(index.findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        generate(root)
        configure(root)
        results = [scan_once() for _ in range(args.runs)]
    times = [r[0] for r in results]
    _, blocks, findings = results[0]
    print(
        f"scan of {TEMPLATES:,} templates ({PARTIALS} partials, 1 base), {args.runs} runs"
    )
    print(
        f"  median: {statistics.median(times):.3f} s   (min {min(times):.3f}, max {max(times):.3f})"
    )
    print(f"  blocks registered: {blocks:,}   findings: {findings}")


if __name__ == "__main__":
    main()
