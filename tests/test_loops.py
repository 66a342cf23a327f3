"""Which loops of a live block are keyed (analysis/loops.py): read from the
compiled template, never guessed."""

from __future__ import annotations

import pytest
from django.template import Context, Engine
from django.template.loader_tags import BlockNode

from reactive_blocks.analysis.loops import keyed_loop

ENGINE = Engine(libraries={})


def loop_of(source: str):
    template = ENGINE.from_string("{% block rows %}" + source + "{% endblock %}")
    block = template.nodelist.get_nodes_by_type(BlockNode)[0]
    return keyed_loop(block, ENGINE)


def key_of(source: str, **item) -> str:
    loop = loop_of(source)
    assert loop is not None
    return loop.key.render(Context({loop.loopvar: item}))


@pytest.mark.parametrize(
    ("source", "key"),
    [
        (
            '{% for d in docs %}<li id="doc-{{ d.pk }}">{{ d.title }}</li>{% endfor %}',
            "doc-5",
        ),
        (
            '<ul>\n{% for d in docs %}\n  <li class="row" id="doc-{{ d.pk }}">{{ d.title }}</li>\n{% endfor %}</ul>',
            "doc-5",
        ),
        (
            "{% for d in docs %}<tr class=\"{{ d.kind }}\" id='r{{ d.pk }}-x'><td>{{ d.title|upper }}</td></tr>{% endfor %}",
            "r5-x",
        ),
        (
            '<p>{{ docs|length }} documents</p>{% for d in docs %}<li id="{{ d.pk }}">{% if d.title %}{{ d.title }}{% endif %}</li>{% empty %}<li>none</li>{% endfor %}',
            "5",
        ),
    ],
)
def test_a_loop_whose_rows_carry_an_id_from_the_item_is_keyed(source, key):
    assert key_of(source, pk=5, title="t", kind="k") == key


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{% for d in docs %}<li>{{ d.title }}</li>{% endfor %}", "no id"),
        (
            '{% for d in docs %}<li id="row">{{ d.title }}</li>{% endfor %}',
            "a constant id",
        ),
        (
            '{% for d in docs %}<li id="{{ other.pk }}">{{ d.title }}</li>{% endfor %}',
            "the id is not the item's",
        ),
        (
            '{% for d in docs %}<li id="d{{ d.pk }}">{{ forloop.counter }}</li>{% endfor %}',
            "its position",
        ),
        (
            '{% for d in docs %}<li id="d{{ d.pk }}" class="{% cycle "a" "b" %}"></li>{% endfor %}',
            "a cycle",
        ),
        (
            '{% for d in docs %}<li id="d{{ d.pk }}">{{ d.title }} by {{ owner }}</li>{% endfor %}',
            "another name",
        ),
        (
            '{% for k, v in pairs %}<li id="d{{ k }}">{{ v }}</li>{% endfor %}',
            "two loop variables",
        ),
        (
            '{% for d in docs %}<li id="d{{ d.pk }}"></li>{% endfor %}{% for d in more %}<li id="e{{ d.pk }}"></li>{% endfor %}',
            "two loops",
        ),
        (
            '{% for d in docs %}<li {% if d.pk %}id="d{{ d.pk }}"{% endif %}></li>{% endfor %}',
            "a tag before the id",
        ),
        (
            '{% for d in docs %}<li>x</li><p id="d{{ d.pk }}"></p>{% endfor %}',
            "the id is not in the first tag",
        ),
        (
            '{% for d in docs %}{% debug %}<li id="d{{ d.pk }}"></li>{% endfor %}',
            "hidden reads",
        ),
    ],
)
def test_other_loops_are_not_keyed(source, why):
    assert loop_of(source) is None, why


def test_a_loop_inside_another_is_not_the_blocks_keyed_loop():
    source = (
        '{% for g in groups %}<ul id="g{{ g.pk }}">{% for d in g.docs %}'
        '<li id="d{{ d.pk }}"></li>{% endfor %}</ul>{% endfor %}'
    )
    loop = loop_of(source)
    assert loop is not None
    assert loop.loopvar == "g"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (
            '{% filter lower %}{% for d in docs %}<li id="d{{ d.pk }}">{{ d.title }}</li>'
            "{% endfor %}{% endfilter %}",
            "a filter changes what the rows render",
        ),
        (
            '{% spaceless %}{% for d in docs %}<li id="d{{ d.pk }}"> {{ d.title }} </li>'
            "{% endfor %}{% endspaceless %}",
            "spaceless changes what the rows render",
        ),
        (
            '{% for doc in docs %}<li id="d{{ doc.pk }}">{% include "rows/cell.html" %}'
            "</li>{% endfor %}",
            "an included template reads forloop",
        ),
        (
            '{% for doc in docs %}<li id="d{{ doc.pk }}">{% include name %}</li>'
            "{% endfor %}",
            "an include whose template is not known",
        ),
    ],
)
def test_loops_whose_rows_a_tag_changes_are_not_keyed(source, why):
    assert loop_of_project(source) is None, why


def test_a_loop_inside_if_and_with_and_an_include_that_reads_its_item_is_keyed():
    source = (
        '{% if docs %}{% with n=1 %}{% for doc in docs %}<li id="d{{ doc.pk }}">'
        '{% include "rows/plain_cell.html" %}</li>{% endfor %}{% endwith %}{% endif %}'
    )
    assert loop_of_project(source) is not None


def loop_of_project(source: str):
    """The keyed loop of a block compiled by the project's engine (its includes
    are found)."""
    from reactive_blocks.analysis.reads import django_engine

    engine = django_engine()
    template = engine.from_string("{% block rows %}" + source + "{% endblock %}")
    block = template.nodelist.get_nodes_by_type(BlockNode)[0]
    return keyed_loop(block, engine)
