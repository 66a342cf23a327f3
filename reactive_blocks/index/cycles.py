"""Cycles in a directed graph of paths, each shown as a closed walk."""

from __future__ import annotations

__all__ = ["find_cycles"]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
