from __future__ import annotations

from reactive_blocks.swaps import find_swaps


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
