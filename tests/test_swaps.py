from __future__ import annotations

from reactive_blocks.analysis.swaps import find_swaps


def test_finds_element_block_id_and_line():
    (swap,), connects = find_swaps(
        '<div hx-ext="sse" sse-connect="/live/">\n'
        '  <h1 id="doc-title" sse-swap="title">{% block title %}{{ doc.title }}{% endblock %}</h1>\n'
        "</div>"
    )
    assert (swap.names, swap.tag, swap.dom_id, swap.line, swap.block) == (
        ("title",),
        "h1",
        "doc-title",
        2,
        "title",
    )
    assert swap.connected is True
    assert swap.dynamic is False
    assert connects == 1


def test_data_prefixed_and_single_quoted_attributes():
    (swap,), _ = find_swaps(
        "<p data-sse-swap='body' id=main>{% block body %}{% endblock %}</p>"
    )
    assert swap.names == ("body",)
    assert swap.dom_id == "main"


def test_reactive_connect_tag_counts_as_connect():
    (swap,), connects = find_swaps(
        '<main {% reactive_connect "doc-live" pk=doc.pk %}>'
        '<div sse-swap="a">{% block a %}{% endblock %}</div></main>'
    )
    assert swap.connected is True
    assert connects == 1


def test_unconnected_element():
    (swap,), connects = find_swaps(
        '<div sse-swap="a">{% block a %}{% endblock %}</div>'
    )
    assert swap.connected is False
    assert connects == 0


def test_template_expression_is_reported_not_guessed():
    (swap,), _ = find_swaps(
        '<div sse-swap="{{ name }}">{% block a %}{% endblock %}</div>'
    )
    assert swap.dynamic is True
    assert swap.names == ()


def test_first_block_inside_nested_markup():
    (swap,), _ = find_swaps(
        '<div sse-swap="body"><section><b>{% block body %}x{% endblock %}</b></section></div>'
    )
    assert swap.block == "body"


def test_comma_separated_event_names():
    (swap,), _ = find_swaps('<div sse-swap="a, b">{% block a %}{% endblock %}</div>')
    assert swap.names == ("a", "b")


def test_unbalanced_conditional_markup_does_not_misattribute_blocks():
    swaps, _ = find_swaps(
        '{% if wide %}<div class="wide">{% else %}<div>{% endif %}'
        '<span sse-swap="a">{% block a %}{% endblock %}</span></div>'
        '<img src="x.png"><br/>'
        '<p sse-swap="b">{% block b %}{% endblock %}</p>'
    )
    assert [(s.names, s.block) for s in swaps] == [(("a",), "a"), (("b",), "b")]


def test_element_without_block():
    (swap,), _ = find_swaps('<div sse-swap="a">static</div>{% block a %}{% endblock %}')
    assert swap.block is None


def test_commented_out_markup_is_ignored_and_lines_kept():
    swaps, _ = find_swaps(
        '{# <div sse-swap="old"> #}\n'
        '{% comment %}\n<div sse-swap="gone">{% block gone %}{% endblock %}</div>\n{% endcomment %}\n'
        '<!-- <p sse-swap="html-comment"></p> -->\n'
        '<p sse-connect="/s" sse-swap="live">{% block live %}{% endblock %}</p>'
    )
    assert [(s.names, s.line) for s in swaps] == [(("live",), 6)]


def test_enclosing_blocks_are_recorded():
    swaps, _ = find_swaps(
        '{% block body %}<main>{% block inner %}<p sse-swap="a">{% block a %}{% endblock %}</p>'
        '{% endblock inner %}<p sse-swap="b">{% block b %}{% endblock %}</p></main>{% endblock %}'
        '<p sse-swap="c"></p>'
    )
    assert [(s.block, s.enclosing) for s in swaps] == [
        ("a", ("body", "inner")),
        ("b", ("body",)),
        (None, ()),
    ]


def test_id_is_read_from_the_id_attribute_only():
    (swap,), _ = find_swaps(
        '<p title="see id=foo" sse-swap="a">{% block a %}{% endblock %}</p>'
    )
    assert swap.dom_id is None


def test_a_swap_may_opt_out_of_keyed_rows():
    swaps, _ = find_swaps(
        '<ul sse-swap="a">{% block a %}{% endblock %}</ul>'
        '<ul sse-swap="b" data-reactive-rows="off">{% block b %}{% endblock %}</ul>'
    )
    assert [(s.names, s.rows) for s in swaps] == [(("a",), True), (("b",), False)]


def test_a_swap_may_say_its_block_is_rendered_for_each_viewer():
    swaps, _ = find_swaps(
        '<p sse-swap="a">{% block a %}{% endblock %}</p>'
        '<p sse-swap="b" data-reactive-personal>{% block b %}{% endblock %}</p>'
        '<p sse-swap="c" data-reactive-personal="false">{% block c %}{% endblock %}</p>'
    )
    assert [s.personal for s in swaps] == [False, True, False]


def test_a_hyphenated_block_name_does_not_lose_the_count():
    """Django admin names blocks like object-tools: the swaps after one are found
    with the blocks they wrap."""
    swaps, _ = find_swaps(
        "{% block content %}{% block object-tools %}<ul>tools</ul>{% endblock %}"
        '<div sse-swap="a">{% block a %}{% endblock %}</div>{% endblock %}'
        '{% block outer %}<p sse-swap="b">{% block b %}{% endblock b %}</p>{% endblock %}'
    )
    assert [(s.names, s.block, s.enclosing) for s in swaps] == [
        (("a",), "a", ("content",)),
        (("b",), "b", ("outer",)),
    ]
