"""Which template blocks display which context paths, and so must re-render on a change.

Paths live in tries keyed by path segment, so a lookup walks the changed path's
segments instead of scanning every block. A change is related to a dependency when
one path is the other or lies under it: ``doc`` affects a block reading
``doc.title`` and ``doc.title`` affects a block reading ``doc``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactive_blocks.paths import (
    freeze_paths,
    freeze_strings,
    is_related,
    require_name,
    validate_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactive_blocks.findings import Finding

__all__ = ["BlockRef", "DependencyIndex"]

T = TypeVar("T")

# Entries per memo; past this the memo restarts.
_MEMO_LIMIT = 16_384


@dataclass(frozen=True, slots=True, order=True)
class BlockRef:
    """One ``{% block %}`` of one template."""

    template_name: str
    block_name: str


class _Node(Generic[T]):
    __slots__ = ("children", "items", "subtree")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.items: set[T] = set()
        self.subtree: frozenset[T] | None = None  # cached: items here and below


class _PathTrie(Generic[T]):
    """Items filed under dotted paths, found by related path."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def add(self, path: str, item: T) -> None:
        node = self._root
        node.subtree = None
        for segment in path.split("."):
            node = node.children.setdefault(segment, _Node())
            node.subtree = None
        node.items.add(item)

    def discard(self, path: str, item: T) -> None:
        trail = [self._root]
        for segment in path.split("."):
            child = trail[-1].children.get(segment)
            if child is None:
                return
            trail.append(child)
        trail[-1].items.discard(item)
        for node in trail:
            node.subtree = None

    def related(self, path: str) -> list[set[T] | frozenset[T]]:
        """Sets of the items filed under ``path``, its prefixes and its subtree."""
        found: list[set[T] | frozenset[T]] = []
        node = self._root
        for segment in path.split("."):
            child = node.children.get(segment)
            if child is None:
                return found
            node = child
            if node.items:
                found.append(node.items)
        found.append(self._subtree(node))
        return found

    def _subtree(self, node: _Node[T]) -> frozenset[T]:
        if node.subtree is None:
            items = set(node.items)
            for child in node.children.values():
                items |= self._subtree(child)
            node.subtree = frozenset(items)
        return node.subtree


class DependencyIndex:
    """Maps context paths to the blocks that read them, plus derived paths.

    Build it at start-up; lookups are thread-safe and memoised.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # Insertion order is registration order, which is page order.
        self._blocks: dict[BlockRef, frozenset[str]] = {}
        # Tries and memos hold small ints (registration order), which hash and sort
        # far faster than dataclass instances.
        self._ids: dict[BlockRef, int] = {}
        self._refs: list[BlockRef] = []
        self._dom_ids: dict[BlockRef, str | None] = {}
        self._everything: dict[int, str] = {}  # block id -> why it reads everything
        self._personal: set[BlockRef] = set()
        # Problems met while registering from templates; the system checks report them.
        self.findings: list[Finding] = []
        self._block_trie: _PathTrie[int] = _PathTrie()
        self._derivations: dict[str, frozenset[str]] = {}  # target -> source paths
        self._source_trie: _PathTrie[str] = _PathTrie()  # source path -> targets
        # Memos: one changed path -> ids of the blocks it affects (derivations
        # included), and a whole query -> its answer.
        self._path_memo: dict[str, frozenset[int]] = {}
        self._query_memo: dict[frozenset[str], tuple[BlockRef, ...]] = {}

    def __repr__(self) -> str:
        return (
            f"<DependencyIndex blocks={len(self._blocks)} "
            f"derivations={len(self._derivations)}>"
        )

    # Registering --------------------------------------------------------------

    def register_block(
        self,
        template_name: str,
        block_name: str,
        paths: Iterable[str],
        dom_id: str | None = None,
        *,
        everything: str | None = None,
        personal: bool = False,
    ) -> BlockRef:
        """Record that ``block_name`` of ``template_name`` reads ``paths``.

        ``everything`` is the reason a block is taken to read every path (its
        template could not be fully analysed); it then re-renders on any change.
        ``personal`` marks a block that renders per-request data (a CSRF token):
        streams render it for each connection. Registering the same block again
        replaces all of this.
        """
        require_name(template_name, name="template_name")
        require_name(block_name, name="block_name")
        if dom_id is not None:
            require_name(dom_id, name="dom_id")
        frozen = freeze_paths(paths, name="paths")
        ref = BlockRef(template_name, block_name)
        with self._lock:
            block_id = self._ids.get(ref)
            if block_id is None:
                block_id = self._ids[ref] = len(self._refs)
                self._refs.append(ref)
            for old in self._blocks.get(ref, ()):
                self._block_trie.discard(old, block_id)
            for path in frozen:
                self._block_trie.add(path, block_id)
            self._blocks[ref] = frozen
            self._dom_ids[ref] = dom_id
            if everything is None:
                self._everything.pop(block_id, None)
            else:
                self._everything[block_id] = everything
            if personal:
                self._personal.add(ref)
            else:
                self._personal.discard(ref)
            self._forget()
        return ref

    def derive(self, path: str, from_paths: Iterable[str]) -> None:
        """Declare that ``path`` is computed from ``from_paths``.

        A change to a source (or a path related to it) then also changes ``path``,
        transitively. Repeated calls for one path add sources.
        """
        validate_path(path, name="path")
        sources = freeze_paths(from_paths, name="from_paths")
        if not sources:
            raise ValueError(f"derive({path!r}) needs at least one source path.")
        with self._lock:
            for source in sources:
                self._source_trie.add(source, path)
            self._derivations[path] = self._derivations.get(path, frozenset()) | sources
            self._forget()

    def _forget(self) -> None:
        self._path_memo.clear()
        self._query_memo.clear()

    # Querying -----------------------------------------------------------------

    def affected_blocks(self, changed_paths: Iterable[str]) -> list[BlockRef]:
        """The blocks to re-render for ``changed_paths``, in registration order."""
        with self._lock:
            # A memoised query was validated when it was first answered.
            if type(changed_paths) is frozenset:
                answer = self._query_memo.get(changed_paths)
                if answer is not None:
                    return list(answer)
            paths = freeze_strings(changed_paths, name="changed_paths")
            found: set[int] = set(self._everything) if paths else set()
            for path in paths:
                found.update(self._affected_by(path))
            answer = tuple(map(self._refs.__getitem__, sorted(found)))
            _remember(self._query_memo, paths, answer)
            return list(answer)

    def block_dependencies(self, template_name: str, block_name: str) -> frozenset[str]:
        """The paths a registered block reads."""
        try:
            return self._blocks[BlockRef(template_name, block_name)]
        except KeyError:
            raise KeyError(
                f"No block {block_name!r} of template {template_name!r} is registered."
            ) from None

    def blocks(self, template_name: str | None = None) -> list[BlockRef]:
        """Registered blocks (of one template, if given), in registration order."""
        with self._lock:
            return [
                ref
                for ref in self._blocks
                if template_name is None or ref.template_name == template_name
            ]

    def dom_id(self, ref: BlockRef) -> str | None:
        return self._dom_ids.get(ref)

    def is_personal(self, ref: BlockRef) -> bool:
        """Whether ``ref`` renders per-request data and so is rendered per connection."""
        return ref in self._personal

    def reads_everything(self, ref: BlockRef) -> str | None:
        """Why ``ref`` is taken to read every path, or None if it was analysed."""
        block_id = self._ids.get(ref)
        return None if block_id is None else self._everything.get(block_id)

    def register_template(
        self,
        template_name: str,
        block_names: Iterable[str] | None = None,
        dom_id_map: dict[str, str] | None = None,
        *,
        using: str | None = None,
    ) -> list[BlockRef]:
        """Register blocks of a template (all of them by default), reading their
        dependencies from the template itself."""
        from reactive_blocks.scan import register_template

        return register_template(self, template_name, block_names, dom_id_map, using)

    def register_from_sse_swaps(
        self,
        template_name: str,
        source: str | None = None,
        exclude_blocks: Iterable[str] = (),
        *,
        using: str | None = None,
    ) -> list[BlockRef]:
        """Register the blocks that the template's ``sse-swap`` elements wrap.

        ``source`` overrides the template's own source text for finding the
        elements; blocks in ``exclude_blocks`` are left to the client.
        """
        from reactive_blocks.scan import register_from_sse_swaps

        return register_from_sse_swaps(
            self, template_name, source, exclude_blocks, using
        )

    def derivations(self) -> dict[str, frozenset[str]]:
        """Each derived path with the paths it is computed from."""
        with self._lock:
            return dict(self._derivations)

    def explain_affected(self, changed_paths: Iterable[str]) -> dict[str, Any]:
        """Why ``changed_paths`` re-render what they do, for debugging and checks."""
        original = freeze_paths(changed_paths, name="changed_paths")
        with self._lock:
            expanded = self._expand(original)
            blocks = self.affected_blocks(original)
            explained: dict[str, Any] = {
                "original_paths": set(original),
                "expanded_paths": set(expanded),
                "derived_paths": set(expanded - original),
                "affected_blocks": [
                    {
                        "template": ref.template_name,
                        "block": ref.block_name,
                        "target": self._dom_ids.get(ref),
                    }
                    for ref in blocks
                ],
            }
            # Only present when it applies, so the usual shape stays as documented.
            everything = [
                {
                    "template": ref.template_name,
                    "block": ref.block_name,
                    "reason": self._everything[self._ids[ref]],
                }
                for ref in blocks
                if self._ids[ref] in self._everything
            ]
            if everything:
                explained["reads_everything"] = everything
            return explained

    def cycles(self) -> list[list[str]]:
        """Derivation cycles, each as a closed walk such as ``["a", "b", "a"]``.

        ``a`` leads to ``b`` when a change to ``a`` expands to ``b``: ``a`` is
        related to one of ``b``'s sources. A path derived from its own parent
        (``doc.summary`` from ``doc``) is not reported; ``a`` from ``a`` is.
        """
        with self._lock:
            derivations = dict(self._derivations)
        graph: dict[str, set[str]] = {target: set() for target in derivations}
        for target, sources in derivations.items():
            for other in derivations:
                if other == target and target not in sources:
                    continue
                if any(is_related(other, source) for source in sources):
                    graph[other].add(target)
        return _find_cycles(graph)

    # Internals ----------------------------------------------------------------

    def _expand(self, paths: frozenset[str]) -> frozenset[str]:
        """``paths`` plus every path derived from them, transitively."""
        # The seen-set makes derivation cycles harmless.
        seen = set(paths)
        frontier = list(paths)
        while frontier:
            for targets in self._source_trie.related(frontier.pop()):
                for target in targets:
                    if target not in seen:
                        seen.add(target)
                        frontier.append(target)
        return frozenset(seen)

    def _affected_by(self, path: str) -> frozenset[int]:
        # Expansion distributes over union (a derivation fires on any one related
        # path), so a query's answer is the union of its paths' answers.
        memo = self._path_memo.get(path)
        if memo is None:
            validate_path(path, name="changed_paths item")
            found: set[int] = set()
            for expanded in self._expand(frozenset((path,))):
                for ids in self._block_trie.related(expanded):
                    found.update(ids)
            memo = frozenset(found)
            _remember(self._path_memo, path, memo)
        return memo


K = TypeVar("K")
V = TypeVar("V")


def _remember(memo: dict[K, V], key: K, value: V) -> None:
    # Keys can come from outside (event paths), so the memo restarts when full.
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed walk per strongly connected component that has a cycle."""
    cycles = []
    for component in _components(graph):
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        cycles.append(_walk_back(graph, start, component))
    return sorted(cycles)


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Kosaraju, iterative: chains may be long)."""
    finished: list[str] = []
    seen: set[str] = set()
    for root in sorted(graph):
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(sorted(graph[root])))]
        while stack:
            node, successors = stack[-1]
            for succ in successors:
                if succ not in seen:
                    seen.add(succ)
                    stack.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
            else:
                stack.pop()
                finished.append(node)
    reverse: dict[str, set[str]] = {node: set() for node in graph}
    for node, targets in graph.items():
        for succ in targets:
            reverse.setdefault(succ, set()).add(node)
    components: list[set[str]] = []
    assigned: set[str] = set()
    for root in reversed(finished):
        if root in assigned:
            continue
        component = {root}
        assigned.add(root)
        pending = [root]
        while pending:
            for pred in reverse.get(pending.pop(), ()):
                if pred not in assigned:
                    assigned.add(pred)
                    component.add(pred)
                    pending.append(pred)
        components.append(component)
    return components


def _walk_back(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """Shortest walk from ``start`` back to itself inside one component."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if succ == start:
                    walk = [node]
                    while walk[-1] != start:
                        walk.append(parents[walk[-1]])
                    return [start, *reversed(walk[:-1]), start]
                if succ in members and succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError("a strongly connected component always has a cycle")
