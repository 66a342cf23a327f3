"""Which template blocks display which context paths, and so must re-render on a change.

Paths live in tries keyed by path segment, so a lookup walks the changed path's
segments instead of scanning every block. A change is related to a dependency when
one path is the other or lies under it: ``doc`` affects a block reading
``doc.title`` and ``doc.title`` affects a block reading ``doc``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import reactive_blocks.index.scan as scan
from reactive_blocks.index.cycles import find_cycles
from reactive_blocks.index.tries import PathTrie
from reactive_blocks.paths import (
    freeze_paths,
    freeze_strings,
    is_related,
    require_name,
    validate_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactive_blocks.analysis.findings import Finding

__all__ = ["BlockRef", "DependencyIndex"]

# Entries per memo; past this the memo restarts.
_MEMO_LIMIT = 16_384


@dataclass(frozen=True, slots=True, order=True)
class BlockRef:
    """One ``{% block %}`` of one template."""

    template_name: str
    block_name: str


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
        self._whole: set[BlockRef] = set()  # keyed loops sent whole (opted out)
        # Problems met while registering from templates; the system checks report them.
        self.findings: list[Finding] = []
        self._block_trie: PathTrie[int] = PathTrie()
        self._derivations: dict[str, frozenset[str]] = {}  # target -> source paths
        self._source_trie: PathTrie[str] = PathTrie()  # source path -> targets
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
        rows: bool = True,
    ) -> BlockRef:
        """Record that ``block_name`` of ``template_name`` reads ``paths``.

        ``everything`` is the reason a block is taken to read every path (its
        template could not be fully analysed); it then re-renders on any change.
        ``personal`` marks a block that renders per-request data (a CSRF token):
        streams render it for each connection. ``rows=False`` sends the block
        whole even if its loop is keyed (``data-reactive-rows="off"``).
        Registering the same block again replaces all of this.
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
            if rows:
                self._whole.discard(ref)
            else:
                self._whole.add(ref)
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

    def sends_rows(self, ref: BlockRef) -> bool:
        """Whether a keyed loop of the block may be sent a row at a time."""
        return ref not in self._whole

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
        return scan.register_template(
            self, template_name, block_names, dom_id_map, using
        )

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
        return scan.register_from_sse_swaps(
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
        return find_cycles(graph)

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
