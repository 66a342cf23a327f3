from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_blocks import BlockRef, DependencyIndex
from reactive_blocks.paths import is_related


@pytest.fixture
def index() -> DependencyIndex:
    index = DependencyIndex()
    index.register_block("docs/detail.html", "title", {"doc.title"}, dom_id="doc-title")
    index.register_block(
        "docs/detail.html", "content", {"doc.content"}, dom_id="doc-body"
    )
    index.register_block("docs/detail.html", "stats", {"doc.word_count", "doc.summary"})
    index.register_block("docs/detail.html", "header", {"doc"})
    index.register_block("docs/list.html", "rows", {"docs"})
    return index


def names(blocks: list[BlockRef]) -> list[str]:
    return [b.block_name for b in blocks]


def test_exact_path_match(index):
    assert names(index.affected_blocks(frozenset({"doc.title"}))) == ["title", "header"]


def test_parent_change_affects_children(index):
    assert names(index.affected_blocks({"doc"})) == [
        "title",
        "content",
        "stats",
        "header",
    ]


def test_child_change_affects_parent_reader(index):
    assert names(index.affected_blocks({"doc.content.html"})) == ["content", "header"]


def test_prefix_matching_respects_segments(index):
    assert names(index.affected_blocks({"docs"})) == ["rows"]
    assert index.affected_blocks({"do"}) == []
    assert index.affected_blocks({"unknown.path"}) == []


def test_results_come_in_registration_order(index):
    index.register_block("docs/detail.html", "title", {"doc.title", "extra"})
    assert names(index.affected_blocks({"extra", "docs", "doc.title"})) == [
        "title",
        "header",
        "rows",
    ]


def test_derivation_adds_blocks(index):
    index.derive("doc.word_count", from_paths={"doc.content"})
    assert names(index.affected_blocks({"doc.content"})) == [
        "content",
        "stats",
        "header",
    ]


def test_derivations_are_transitive(index):
    index.derive("doc.summary", from_paths={"doc.excerpt"})
    index.derive("doc.excerpt", from_paths={"doc.body_text"})
    explained = index.explain_affected({"doc.body_text"})
    assert explained["derived_paths"] == {"doc.excerpt", "doc.summary"}
    assert "stats" in names(index.affected_blocks({"doc.body_text"}))


def test_derivation_sources_match_by_prefix(index):
    index.derive("doc.word_count", from_paths={"doc.content"})
    assert index.explain_affected({"doc.content.raw"})["derived_paths"] == {
        "doc.word_count"
    }
    index.derive("stats.total", from_paths={"doc.content"})
    assert index.explain_affected({"doc"})["derived_paths"] == {
        "doc.word_count",
        "stats.total",
    }


def test_derive_accumulates_sources(index):
    index.derive("doc.summary", from_paths={"doc.content"})
    index.derive("doc.summary", from_paths={"doc.title"})
    assert index.derivations()["doc.summary"] == {"doc.content", "doc.title"}


def test_cycles_do_not_hang_and_are_reported(index):
    index.derive("a", from_paths={"b"})
    index.derive("b", from_paths={"c"})
    index.derive("c", from_paths={"a"})
    index.derive("self", from_paths={"self"})
    index.derive("d", from_paths={"a"})
    assert index.explain_affected({"a"})["expanded_paths"] == {"a", "b", "c", "d"}
    assert index.cycles() == [["a", "c", "b", "a"], ["self", "self"]]


def test_cycles_through_prefix_matching_are_reported(index):
    index.derive("a.x", from_paths={"b"})
    index.derive("b.y", from_paths={"a"})
    assert index.explain_affected({"a"})["derived_paths"] == {"a.x", "b.y"}
    assert index.cycles() == [["a.x", "b.y", "a.x"]]


def test_path_derived_from_its_parent_is_not_a_cycle(index):
    index.derive("doc.summary", from_paths={"doc"})
    assert index.cycles() == []


def test_long_derivation_chain_does_not_exhaust_the_stack():
    index = DependencyIndex()
    for n in range(3_000):
        index.derive(f"p{n + 1}", from_paths={f"p{n}"})
    index.derive("p0", from_paths={"p3000"})
    (cycle,) = index.cycles()
    assert len(cycle) == 3_002
    assert cycle[0] == cycle[-1] == "p0"


def test_no_cycles_when_acyclic(index):
    index.derive("doc.word_count", from_paths={"doc.content"})
    index.derive("doc.summary", from_paths={"doc.word_count", "doc.content"})
    assert index.cycles() == []


def test_explain_affected_shape(index):
    index.derive("doc.word_count", from_paths={"doc.content"})
    assert index.explain_affected(frozenset({"doc.content"})) == {
        "original_paths": {"doc.content"},
        "expanded_paths": {"doc.content", "doc.word_count"},
        "derived_paths": {"doc.word_count"},
        "affected_blocks": [
            {"template": "docs/detail.html", "block": "content", "target": "doc-body"},
            {"template": "docs/detail.html", "block": "stats", "target": None},
            {"template": "docs/detail.html", "block": "header", "target": None},
        ],
    }


def test_block_dependencies(index):
    assert index.block_dependencies("docs/detail.html", "stats") == {
        "doc.word_count",
        "doc.summary",
    }
    with pytest.raises(
        KeyError, match=r"No block 'nope' of template 'docs/detail\.html'"
    ):
        index.block_dependencies("docs/detail.html", "nope")


def test_reregistering_replaces_paths(index):
    index.register_block("docs/detail.html", "title", {"doc.heading"}, dom_id="h")
    assert index.affected_blocks({"doc.title"}) == [
        BlockRef("docs/detail.html", "header")
    ]
    assert names(index.affected_blocks({"doc.heading"})) == ["title", "header"]
    assert index.dom_id(BlockRef("docs/detail.html", "title")) == "h"


def test_blocks_lists_registrations(index):
    assert names(index.blocks("docs/list.html")) == ["rows"]
    assert len(index.blocks()) == 5


def test_register_block_validates():
    index = DependencyIndex()
    with pytest.raises(
        TypeError, match="paths must be a collection of strings, not a single str"
    ):
        index.register_block("t.html", "b", "doc.title")
    with pytest.raises(ValueError, match="template_name must be a non-empty string"):
        index.register_block("", "b", set())
    with pytest.raises(TypeError, match="block_name must be a str, got NoneType"):
        index.register_block("t.html", None, set())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'doc\.\.x' is not a dotted context path"):
        index.register_block("t.html", "b", {"doc..x"})
    with pytest.raises(ValueError, match="dom_id must be a non-empty string"):
        index.register_block("t.html", "b", set(), dom_id="")


def test_derive_validates():
    index = DependencyIndex()
    with pytest.raises(TypeError, match="from_paths must be a collection of strings"):
        index.derive("a", from_paths="b")
    with pytest.raises(ValueError, match="needs at least one source"):
        index.derive("a", from_paths=set())


def test_affected_blocks_refuses_bare_string(index):
    with pytest.raises(
        TypeError, match="changed_paths must be a collection of strings"
    ):
        index.affected_blocks("doc.title")


def test_memo_is_dropped_on_registration(index):
    assert index.affected_blocks({"late"}) == []
    index.register_block("late.html", "b", {"late"})
    assert index.affected_blocks({"late"}) == [BlockRef("late.html", "b")]
    index.derive("late", from_paths={"early"})
    assert index.affected_blocks({"early"}) == [BlockRef("late.html", "b")]


def test_concurrent_registration_and_lookup_stay_consistent():
    index = DependencyIndex()
    errors: list[BaseException] = []

    def register(worker: int) -> None:
        try:
            for n in range(300):
                index.register_block(
                    f"t{worker}.html", f"b{n}", {f"w{worker}.f{n % 7}"}
                )
                index.affected_blocks({f"w{worker}"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    for worker in range(8):
        assert len(index.affected_blocks({f"w{worker}"})) == 300


# Property: the trie agrees with a brute-force reading of the rules ------------------

segments = st.sampled_from(["a", "b", "c", "0"])
paths = st.lists(segments, min_size=1, max_size=4).map(".".join)


def oracle(registrations, derivations, changed):
    expanded = set(changed)
    grew = True
    while grew:
        grew = False
        for target, sources in derivations:
            if target not in expanded and any(
                is_related(s, p) for s in sources for p in expanded
            ):
                expanded.add(target)
                grew = True
    final = {}
    for ref, deps in registrations:
        final[ref] = deps  # later registrations replace earlier ones
    return {
        ref
        for ref, deps in final.items()
        if any(is_related(d, p) for d in deps for p in expanded)
    }


@settings(max_examples=300, deadline=None)
@given(
    registrations=st.lists(
        st.tuples(
            st.builds(
                BlockRef,
                st.sampled_from(["x.html", "y.html"]),
                st.sampled_from("pqrst"),
            ),
            st.frozensets(paths, max_size=3),
        ),
        max_size=12,
    ),
    derivations=st.lists(
        st.tuples(paths, st.frozensets(paths, min_size=1, max_size=3)), max_size=6
    ),
    changed=st.frozensets(paths, max_size=4),
)
def test_affected_blocks_matches_brute_force_oracle(
    registrations, derivations, changed
):
    index = DependencyIndex()
    for ref, deps in registrations:
        index.register_block(ref.template_name, ref.block_name, deps)
    for target, sources in derivations:
        index.derive(target, from_paths=sources)
    got = index.affected_blocks(changed)
    assert len(got) == len(set(got))
    assert set(got) == oracle(registrations, derivations, changed)
    # Asking twice (memoised) gives the same answer.
    assert index.affected_blocks(changed) == got


def test_a_block_registered_without_rows_is_sent_whole():
    index = DependencyIndex()
    keyed = index.register_block("t.html", "a", {"docs"})
    whole = index.register_block("t.html", "b", {"docs"}, rows=False)
    assert index.sends_rows(keyed)
    assert not index.sends_rows(whole)
    index.register_block("t.html", "b", {"docs"})  # registered again: replaced
    assert index.sends_rows(whole)
