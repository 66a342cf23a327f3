"""Items filed under dotted paths, found by related path, one segment at a time."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["PathTrie"]

T = TypeVar("T")


class _Node(Generic[T]):
    __slots__ = ("children", "items", "subtree")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.items: set[T] = set()
        self.subtree: frozenset[T] | None = None  # cached: items here and below


class PathTrie(Generic[T]):
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
