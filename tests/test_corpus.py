"""Templates nobody here wrote: Django admin's and django-debug-toolbar's (a test
dependency), read as the scan reads a project's. Nothing may crash, no swap may be
dropped, and what known blocks read is right."""

from __future__ import annotations

from pathlib import Path

import debug_toolbar
import django
import pytest
from django.template import Engine

from reactive_blocks.analysis.reads import analyse_template
from reactive_blocks.analysis.swaps import find_swaps

ADMIN = Path(django.__file__).parent / "contrib" / "admin" / "templates"
TOOLBAR = Path(debug_toolbar.__file__).parent / "templates"
# Outside the test project's template dirs: its start-up scan must not see them.
CHILD = Path(__file__).parent / "corpus"
LIBRARIES = {
    "admin_list": "django.contrib.admin.templatetags.admin_list",
    "admin_modify": "django.contrib.admin.templatetags.admin_modify",
    "admin_urls": "django.contrib.admin.templatetags.admin_urls",
    "log": "django.contrib.admin.templatetags.log",
    "i18n": "django.templatetags.i18n",
    "l10n": "django.templatetags.l10n",
    "static": "django.templatetags.static",
    "tz": "django.templatetags.tz",
    "cache": "django.templatetags.cache",
    "debug_toolbar": "debug_toolbar.templatetags.debug_toolbar",
    "corpus_tags": "tests.templatetags.corpus_tags",
}
ENGINE = Engine(dirs=[str(CHILD), str(ADMIN), str(TOOLBAR)], libraries=LIBRARIES)
TEMPLATES = sorted(str(p.relative_to(ADMIN)) for p in ADMIN.rglob("*.html"))
TOOLBAR_TEMPLATES = sorted(str(p.relative_to(TOOLBAR)) for p in TOOLBAR.rglob("*.html"))


def test_the_corpus_is_django_admins_whole_template_set():
    assert len(TEMPLATES) >= 40
    assert "admin/change_list.html" in TEMPLATES


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_admin_template_is_read_without_a_crash(name):
    analysis = analyse_template(name, ENGINE)
    assert analysis.problems == []
    find_swaps((ADMIN / name).read_text())


@pytest.mark.parametrize("name", TOOLBAR_TEMPLATES)
def test_every_debug_toolbar_template_is_read_without_a_crash(name):
    analysis = analyse_template(name, ENGINE)
    assert analysis.problems == []
    find_swaps((TOOLBAR / name).read_text())


def test_known_blocks_read_what_they_show():
    blocks = analyse_template("admin/base.html", ENGINE).blocks
    # {% block title %}{% endblock %} in base.html; base_site.html fills it.
    assert blocks["title"].paths == frozenset()
    # The user tools read the user and the request's permissions: personal data.
    assert (
        "user.is_active" in blocks["usertools"].paths or blocks["usertools"].everything
    )
    site = analyse_template("admin/base_site.html", ENGINE).blocks
    assert site["branding"].paths >= {"site_header"}


def test_swaps_after_admin_blocks_are_all_found():
    """A page extending admin's change list, with live parts after blocks named
    like object-tools: each swap is found with the block it wraps."""
    source = (CHILD / "admin_live.html").read_text()
    swaps, _ = find_swaps(source)
    # In a child template only what is inside a block renders: a swap whose
    # enclosing block is lost would be dropped.
    assert [(s.names, s.block, s.enclosing) for s in swaps] == [
        (("count",), "count", ("content_title",)),
        (("results",), "results", ("result_list",)),
    ]
    blocks = analyse_template("admin_live.html", ENGINE).blocks
    assert blocks["results"].paths == {"cl.result_count", "cl.opts.verbose_name"}


def test_a_live_block_including_a_debug_toolbar_template_reads_what_it_shows():
    swaps, _ = find_swaps((CHILD / "toolbar_live.html").read_text())
    assert [(s.names, s.block) for s in swaps] == [(("panel",), "panel")]
    block = analyse_template("toolbar_live.html", ENGINE).blocks["panel"]
    assert block.everything is None  # simple tags without takes_context
    assert block.paths == {
        "panel.enabled",
        "panel.has_content",
        "panel.nav_icon",
        "panel.nav_subtitle",
        "panel.nav_title",
        "panel.panel_id",
        "panel.title",
    }


def test_allauth_style_elements_read_everything_and_name_no_fake_paths():
    """{% element h1 %} parses ``h1`` as an expression but uses its text, and
    hands the whole context on: the block reads everything, and neither ``h1``
    nor a name bound by {% setvar %} is listed as something the page must give."""
    block = analyse_template("allauth_live.html", ENGINE).blocks["login"]
    assert block.everything == (
        "{% element %} (ElementNode) at line 3 is a tag of its own, which may read "
        "any name"
    )
    assert block.paths == {"site.name", "signup_url", "other"}
