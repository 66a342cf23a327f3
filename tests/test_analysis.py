"""The analysis against a corpus of templates whose path sets are written out by hand."""

from __future__ import annotations

import pytest
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.test import override_settings

from reactive_blocks.analysis.reads import analyse_template, django_engine

EVERYTHING = "everything"

CORPUS = [
    ("variables.html", "plain", {"doc.author.name"}),
    (
        "variables.html",
        "filters",
        {"doc.title", "fallback.title", "limit", "other.value"},
    ),
    ("variables.html", "literals", set()),
    ("variables.html", "outer", {"top.a", "nested.b"}),
    ("variables.html", "inner", {"nested.b"}),
    (
        "conditions.html",
        "conds",
        {"doc.published", "doc.archived", "user.is_staff", "count", "tags", "fallback"},
    ),
    (
        "loops.html",
        "items",
        {
            "doc.items",
            "doc.items.title",
            "doc.items.tags",
            "doc.items.tags.name",
            "empty_text",
        },
    ),
    ("loops.html", "pairs", {"doc.meta.items", "doc.meta.items.label"}),
    ("loops.html", "literal_loop", set()),
    ("loops.html", "reversed", {"table.rows", "table.rows.0"}),
    (
        "with.html",
        "aliased",
        {"doc.owner", "doc.owner.name", "doc.comments.count", "owner"},
    ),
    ("with.html", "legacy", {"doc.body", "doc.body.html"}),
    ("with.html", "filtered", {"doc.items"}),
    ("include.html", "inc", {"item.title", "site.name"}),
    ("include.html", "inc_with", {"doc.lead", "doc.lead.title", "site.name"}),
    ("include.html", "inc_only", {"doc.lead", "doc.lead.title"}),
    ("include.html", "inc_dynamic", {"template_name", EVERYTHING}),
    ("include.html", "inc_nested", {"feed.entries", "feed.entries.title", "site.name"}),
    (
        "include.html",
        "inc_recursive",
        # The recursion stops at the second visit; prefix matching on
        # tree.root.children covers every deeper level.
        {"tree.root", "tree.root.label", "tree.root.children"},
    ),
    ("include.html", "inc_missing", {EVERYTHING}),
    ("child.html", "title", {"doc.title", "site.name"}),
    ("child.html", "content", {"doc.body"}),
    ("child.html", "sidebar", {"menu.items"}),
    ("child.html", "body", {"doc.body", "menu.items"}),
    ("grandchild.html", "title", {"section.name", "doc.title", "site.name"}),
    ("grandchild.html", "body", {"doc.body", "menu.items"}),
    ("dynamic_parent.html", "content", {"doc.body", "layout", EVERYTHING}),
    (
        "builtins.html",
        "misc",
        {
            "a.b",
            "c.d",
            "row.odd",
            "row.even",
            "doc.slug",
            "n.page",
            "score.value",
            "score.max",
            "s.v",
            "raw.html",
            "day.date",
            "day.label",
            "cut.char",
            "f.v",
            "people",
            "people.team.name",
            "people.grouper",
        },
    ),
    (
        "builtins.html",
        "i18n",
        {"greeting.text", "doc.owner.name", "doc.items", "visitor"},
    ),
    ("builtins.html", "static", {"asset.path"}),
    ("custom.html", "simple", {"doc.owner.name", "salutation.text"}),
    ("custom.html", "simple_as", {"doc.title"}),
    ("custom.html", "no_args", set()),
    ("custom.html", "contextual", {EVERYTHING}),
    ("custom.html", "opaque", {EVERYTHING}),
    # A hand-written Node may read any name as it renders: everything, unless
    # REACTIVE_BLOCKS["ARGUMENT_TAGS"] says better (below); its arguments are then
    # not listed, since it may use their text rather than resolve them.
    ("custom.html", "holds_variable", {EVERYTHING}),
    ("custom.html", "inclusion", {"doc.lead"}),
    ("custom.html", "debug", {EVERYTHING}),
    # block.super anywhere an expression can be, not only in {{ }}
    ("review.html", "title", {"site.name"}),
    ("review.html", "content", {"doc.body"}),  # simple_block_tag content
    ("review.html", "sidebar", {"layout", EVERYTHING}),  # include of a variable-extends
    (
        "review.html",
        "page_extra",
        {"doc.x", EVERYTHING},
    ),  # container tag, no expressions
    ("review.html", "lorem", {"doc.n"}),
    ("review.html", "trans_context", {"doc.ctx"}),
    ("review.html", "conditional_as", {"c", "doc.title"}),  # local only in the branch
    ("review.html", "loop_nested", {"feed.items", "feed.items.title"}),
    ("review.html", "loop_inner", {"item.title"}),  # rendered alone, item is context
    ("review.html", "prefixes", {"when.at"}),
    ("review.html", "recursive_a", {"ring.b", "ring.c"}),
    ("review.html", "recursive_b", {"ring.b", "ring.c"}),
]


@pytest.mark.parametrize(("template", "block", "expected"), CORPUS)
def test_block_reads_exactly_these_paths(template, block, expected):
    analysis = analyse_template(f"analysis/{template}")
    result = analysis.blocks[block]
    got = set(result.paths)
    if result.everything is not None:
        got.add(EVERYTHING)
    assert got == expected


@override_settings(REACTIVE_BLOCKS={"ARGUMENT_TAGS": ["show_var", "whoami"]})
def test_tags_listed_as_reading_their_arguments_read_only_them():
    blocks = analyse_template("analysis/custom.html").blocks
    assert blocks["holds_variable"].paths == {"doc.secret"}
    assert blocks["holds_variable"].everything is None
    assert blocks["contextual"].everything is None  # takes_context, but listed


def test_reasons_for_everything_name_the_tag_and_line():
    blocks = analyse_template("analysis/custom.html").blocks
    assert blocks["opaque"].everything == (
        "{% opaque %} (OpaqueNode) at line 6 exposes no expressions to analyse"
    )
    assert blocks["contextual"].everything == (
        "{% whoami %} at line 5 takes the whole context"
    )
    assert "{% debug %} at line 9" in (blocks["debug"].everything or "")
    assert blocks["holds_variable"].everything == (
        "{% show_var %} (ShowVarNode) at line 7 is a tag of its own, which may "
        "read any name"
    )


def test_inherited_blocks_say_where_they_are_defined():
    analysis = analyse_template("analysis/grandchild.html")
    assert analysis.chain == [
        "analysis/grandchild.html",
        "analysis/child.html",
        "analysis/base.html",
    ]
    assert list(analysis.blocks) == ["title", "body", "content", "sidebar"]
    assert analysis.blocks["title"].template_name == "analysis/grandchild.html"
    assert analysis.blocks["content"].template_name == "analysis/child.html"
    assert analysis.blocks["sidebar"].template_name == "analysis/base.html"
    assert analysis.blocks["sidebar"].line == 2


def test_missing_include_is_reported_not_raised():
    analysis = analyse_template("analysis/include.html")
    (problem,) = analysis.problems
    assert problem.id == "W008"
    assert problem.template == "analysis/does-not-exist.html"
    assert "included at line 7" in problem.message


def test_a_template_may_extend_one_of_the_same_name(tmp_path, settings):
    first, second = tmp_path / "override", tmp_path / "app"
    first.mkdir()
    second.mkdir()
    (second / "page.html").write_text(
        "{% block title %}{{ doc.title }}{% endblock %}{% block body %}{{ doc.body }}{% endblock %}"
    )
    (first / "page.html").write_text(
        '{% extends "page.html" %}{% block title %}[{{ block.super }}]{% endblock %}'
    )
    use_templates(settings, first, second)
    analysis = analyse_template("page.html")
    assert [block.paths for block in analysis.blocks.values()] == [
        {"doc.title"},
        {"doc.body"},
    ]
    assert len(analysis.chain) == 2


def test_missing_template_raises():
    with pytest.raises(TemplateDoesNotExist):
        analyse_template("analysis/nope.html")


def test_syntax_error_raises(tmp_path, settings):
    (tmp_path / "broken.html").write_text("{% block a %}{% if %}{% endblock %}")
    use_templates(settings, tmp_path)
    with pytest.raises(TemplateSyntaxError):
        analyse_template("broken.html")


def test_unknown_engine_is_named():
    with pytest.raises(LookupError, match="No Django template engine named 'jinja'"):
        django_engine("jinja")


def use_templates(settings, *directories) -> None:
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": list(directories),
        }
    ]


def test_csrf_token_makes_a_block_personal(tmp_path, settings):
    (tmp_path / "form.html").write_text(
        "{% block form %}<form>{% csrf_token %}{{ doc.title }}</form>{% endblock %}"
        "{% block plain %}{{ doc.title }}{% endblock %}"
        "{% block variable %}{{ csrf_token }}{% endblock %}"
    )
    use_templates(settings, tmp_path)
    blocks = analyse_template("form.html").blocks
    assert (
        blocks["form"].personal,
        blocks["plain"].personal,
        blocks["variable"].personal,
    ) == (
        True,
        False,
        True,
    )
    assert blocks["form"].paths == {"doc.title"}


def test_an_inclusion_tag_whose_template_has_csrf_token_is_personal(tmp_path, settings):
    (tmp_path / "form.html").write_text(
        "{% load corpus_tags %}"
        "{% block form %}{% title_form doc.title %}{% endblock %}"
        "{% block card %}{% card doc %}{% endblock %}"
    )
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "_form.html").write_text("<form>{% csrf_token %}</form>")
    use_templates(settings, tmp_path, *settings.TEMPLATES[0]["DIRS"])
    blocks = analyse_template("form.html").blocks
    assert (blocks["form"].personal, blocks["card"].personal) == (True, False)


def test_names_bound_around_a_block_are_reported(tmp_path, settings):
    (tmp_path / "page.html").write_text(
        "{% with u=request.user %}\n"
        "{% for item in doc.items %}{% block row %}{{ u.name }} {{ item }} "
        "{{ doc.title }}{% endblock %}{% endfor %}\n"
        "{% block own %}{% with v=doc.title %}{{ v }}{% endwith %}{% endblock %}"
        "{% endwith %}"
    )
    use_templates(settings, tmp_path)
    blocks = analyse_template("page.html").blocks
    assert blocks["row"].outside == (
        "'item' ({% for %} at line 2), 'u' ({% with %} at line 1)"
    )
    assert blocks["own"].outside is None  # bound inside the block: fine


def test_names_a_parent_binds_around_a_block_a_child_fills_are_reported(
    tmp_path, settings
):
    (tmp_path / "base.html").write_text(
        "{% with u=request.user %}{% block greeting %}{% endblock %}{% endwith %}"
    )
    (tmp_path / "child.html").write_text(
        '{% extends "base.html" %}{% block greeting %}Hi {{ u.name }}{% endblock %}'
    )
    use_templates(settings, tmp_path)
    outside = analyse_template("child.html").blocks["greeting"].outside
    assert outside == "'u' ({% with %} at line 1)"


def test_a_name_bound_by_an_as_tag_before_the_block_is_reported():
    """The stream renders the block alone, without LANGUAGE_BIDI (admin's
    base.html binds it so): the update would differ from the page."""
    blocks = analyse_template("analysis/bound_as.html").blocks
    assert blocks["dir"].outside == (
        "'LANGUAGE_BIDI' ({% get_current_language_bidi ... as %} at line 1)"
    )
    assert blocks["link"].outside == "'home_url' ({% url ... as %} at line 1)"
    assert blocks["plain"].outside is None
