"""Building the index from templates: register_template, sse-swap scans, the project scan."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from reactive_blocks import BlockRef, DependencyIndex, get_index
from reactive_blocks.analysis.listing import list_templates
from reactive_blocks.analysis.reads import django_engine

DOC = "pages/doc.html"


def templates_in(directory) -> list[dict[str, object]]:
    return [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [directory],
            "OPTIONS": {"builtins": ["tests.templatetags.corpus_tags"]},
        }
    ]


def test_register_from_sse_swaps_registers_wrapped_blocks_with_dom_ids():
    index = DependencyIndex()
    refs = index.register_from_sse_swaps(DOC, exclude_blocks={"editor"})
    assert refs == [BlockRef(DOC, "title"), BlockRef(DOC, "content")]
    assert index.block_dependencies(DOC, "content") == {"doc.content", "doc.version"}
    assert index.dom_id(BlockRef(DOC, "content")) == "doc-body"
    assert index.affected_blocks({"draft.text"}) == []
    assert index.findings == []


def test_register_from_sse_swaps_with_explicit_source():
    index = DependencyIndex()
    source = (
        '{% extends "pages/base.html" %}{% block body %}'
        '<b id="t" sse-swap="title">{% block title %}{% endblock %}</b>{% endblock %}'
    )
    assert index.register_from_sse_swaps(DOC, source=source) == [BlockRef(DOC, "title")]
    assert index.dom_id(BlockRef(DOC, "title")) == "t"


def test_a_block_marked_personal_is_rendered_for_each_viewer():
    """A block whose data depends on the viewer in a way no analysis sees (a model
    method that asks a thread-local for the user, say) is marked on its element."""
    index = DependencyIndex()
    source = (
        '{% extends "pages/base.html" %}{% block body %}'
        '<b sse-swap="title" data-reactive-personal>{% block title %}{% endblock %}'
        '</b><i sse-swap="content">{% block content %}{% endblock %}</i>'
        "{% endblock %}"
    )
    title, content = index.register_from_sse_swaps(DOC, source=source)
    assert index.is_personal(title)
    assert not index.is_personal(content)


def test_register_from_sse_swaps_refuses_bare_string_exclusions():
    with pytest.raises(
        TypeError, match="exclude_blocks must be a collection of block names"
    ):
        DependencyIndex().register_from_sse_swaps(DOC, exclude_blocks="editor")


def test_register_template_all_blocks_and_dom_ids():
    index = DependencyIndex()
    refs = index.register_template(
        "analysis/child.html",
        block_names=["title", "content"],
        dom_id_map={"content": "main"},
    )
    assert refs == [
        BlockRef("analysis/child.html", "title"),
        BlockRef("analysis/child.html", "content"),
    ]
    assert index.block_dependencies("analysis/child.html", "title") == {
        "doc.title",
        "site.name",
    }
    assert index.dom_id(refs[1]) == "main"
    everything = index.register_template("analysis/child.html")
    assert [r.block_name for r in everything] == ["title", "body", "content", "sidebar"]


def test_register_template_names_a_missing_block():
    with pytest.raises(
        ValueError, match="has no block 'nope'; its blocks are 'title', 'body'"
    ):
        DependencyIndex().register_template("analysis/child.html", block_names=["nope"])


def test_unanalysable_block_reads_everything_and_says_why():
    index = DependencyIndex()
    index.register_template("analysis/custom.html", block_names=["opaque", "simple"])
    assert index.affected_blocks({"anything.at.all"}) == [
        BlockRef("analysis/custom.html", "opaque")
    ]
    explained = index.explain_affected({"doc.owner.name"})
    assert [b["block"] for b in explained["affected_blocks"]] == ["opaque", "simple"]
    assert explained["reads_everything"] == [
        {
            "template": "analysis/custom.html",
            "block": "opaque",
            "reason": "{% opaque %} (OpaqueNode) at line 6 exposes no expressions to analyse",
        }
    ]
    assert [f.id for f in index.findings] == ["W004"]


def test_project_index_is_built_from_the_templates_at_startup():
    index = get_index()
    assert BlockRef(DOC, "title") in index.blocks()
    assert BlockRef(DOC, "editor") in index.blocks()
    # Templates without sse-swap are not registered.
    assert index.blocks("analysis/child.html") == []
    # The blocks that read the whole context on purpose (the stream renders them
    # per viewer, like the page): a takes_context tag, a tag of its own.
    assert sorted((f.id, f.template, f.line) for f in index.findings) == [
        ("W004", "live/parity.html", 8),
        ("W004", "pages_site/greeting.html", 4),
    ]


def test_list_templates_walks_dirs_and_app_directories():
    names = dict(list_templates(django_engine()))
    assert DOC in names
    assert names[DOC].name == "doc.html"


def write_pages(directory):
    (directory / "live").mkdir()
    page = '<main sse-connect="/s">{% block body %}<p sse-swap="a">{% block a %}{{ x.a }}{% endblock %}</p>{% endblock %}</main>'
    (directory / "live" / "one.html").write_text(page)
    (directory / "live" / "two.html").write_text(page)
    (directory / "other.html").write_text(page)
    (directory / "broken.html").write_text(
        '<p sse-connect="/s" sse-swap="a">\n{% block a %}\n{% if %}{% endblock %}</p>'
    )


def test_scan_honours_include_and_exclude(tmp_path):
    write_pages(tmp_path)
    with override_settings(
        TEMPLATES=templates_in(tmp_path),
        REACTIVE_BLOCKS={"SCAN_INCLUDE": ["live/*"], "SCAN_EXCLUDE": ["live/two.html"]},
    ):
        assert get_index().blocks() == [BlockRef("live/one.html", "a")]


def test_broken_template_is_reported_and_others_still_indexed(tmp_path, caplog):
    write_pages(tmp_path)
    with (
        override_settings(TEMPLATES=templates_in(tmp_path)),
        caplog.at_level(logging.WARNING),
    ):
        index = get_index()
        templates = {ref.template_name for ref in index.blocks()}
    assert templates == {"live/one.html", "live/two.html", "other.html"}
    (finding,) = index.findings
    assert (finding.id, finding.template, finding.line) == ("W008", "broken.html", 3)
    assert "Unexpected end of expression in if tag" in finding.message
    assert "reactive_blocks skipped template broken.html:3" in caplog.text


def test_unreadable_template_is_reported(tmp_path):
    (tmp_path / "latin.html").write_bytes(b"sse-swap \xff\xfe")
    with override_settings(TEMPLATES=templates_in(tmp_path)):
        (finding,) = get_index().findings
    assert finding.id == "W008"
    assert "cannot be read" in finding.message


def test_a_child_page_inherits_the_swapped_elements_of_its_base(tmp_path):
    (tmp_path / "base.html").write_text(
        '<main sse-connect="/s">{% block top %}<h1 id="t" sse-swap="title">'
        "{% block title %}{{ site.name }}{% endblock %}</h1>{% endblock %}"
        '<div id="c" sse-swap="content">{% block content %}{% endblock %}</div></main>'
    )
    (tmp_path / "child.html").write_text(
        '{% extends "base.html" %}{% block content %}{{ doc.title }}{% endblock %}'
    )
    (tmp_path / "replacing.html").write_text(
        '{% extends "base.html" %}{% block top %}<h2 id="t2" sse-swap="heading">'
        "{% block heading %}{{ doc.heading }}{% endblock %}</h2>{% endblock %}"
    )
    with override_settings(TEMPLATES=templates_in(tmp_path)):
        index = get_index()
        child = {
            r.block_name: index.block_dependencies(r.template_name, r.block_name)
            for r in index.blocks("child.html")
        }
        replacing = [r.block_name for r in index.blocks("replacing.html")]
        findings = index.findings
    assert child == {"title": {"site.name"}, "content": {"doc.title"}}
    # The base's <h1> sits in {% block top %}, which replacing.html overrides.
    assert replacing == ["heading", "content"]
    assert findings == []


def test_duplicate_ids_are_found_across_the_inheritance_chain(tmp_path):
    (tmp_path / "base.html").write_text(
        '<main sse-connect="/s"><p id="x" sse-swap="a">{% block a %}{% endblock %}</p>'
        "{% block body %}{% endblock %}</main>"
    )
    (tmp_path / "child.html").write_text(
        '{% extends "base.html" %}{% block body %}<p id="x" sse-swap="b">'
        "{% block b %}{% endblock %}</p>{% endblock %}"
    )
    with override_settings(TEMPLATES=templates_in(tmp_path)):
        findings = [f for f in get_index().findings if f.id == "W006"]
    assert [(f.template, f.line) for f in findings] == [("base.html", 1)]
    assert "child.html:1 and base.html:1" in findings[0].message


def test_included_partial_is_not_reported_as_unconnected(tmp_path):
    (tmp_path / "_panel.html").write_text(
        '<p id="p" sse-swap="panel">{% block panel %}{% endblock %}</p>'
    )
    (tmp_path / "page.html").write_text(
        '<main sse-connect="/s">{% include "_panel.html" %}</main>'
    )
    with override_settings(TEMPLATES=templates_in(tmp_path)):
        assert [f.id for f in get_index().findings] == []


def test_binary_files_in_template_dirs_are_skipped_quietly(tmp_path):
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\xff\xfe")
    with override_settings(TEMPLATES=templates_in(tmp_path)):
        assert get_index().findings == []
