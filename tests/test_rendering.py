from __future__ import annotations

import pytest
from django.test import RequestFactory
from render_block import BlockNotFound

from reactive_blocks.rendering import render_block


def test_renders_one_block_through_inheritance_and_super():
    html = render_block(
        "analysis/child.html",
        "title",
        {"doc": {"title": "Doc"}, "site": {"name": "Site"}},
    )
    assert html == "Doc \u2013 Site"


def test_renders_an_inherited_block_with_its_nested_override():
    html = render_block(
        "analysis/child.html", "body", {"doc": {"body": "B"}, "menu": {"items": "M"}}
    )
    assert html == "<main>B</main><aside>M</aside>"


def test_request_runs_context_processors():
    request = RequestFactory().get("/docs/42/")
    html = render_block(
        "rendering/page.html", "content", {"doc": {"body": "x"}}, request
    )
    assert html == "<p>x</p>\n<p>/docs/42/</p>"


def test_without_request_there_is_no_request_context():
    assert render_block("rendering/page.html", "content", {"doc": {"body": "x"}}) == (
        "<p>x</p>\n<p></p>"
    )


def test_html_is_escaped_and_unicode_kept():
    assert (
        render_block(
            "analysis/variables.html", "plain", {"doc": {"author": {"name": "<é>"}}}
        )
        == "&lt;é&gt;"
    )


def test_unknown_block_raises():
    with pytest.raises(BlockNotFound):
        render_block("analysis/child.html", "nope", {})
