"""What turns the rows a page shows into the rows it should show: the fewest
moves, as a ``reactive-rows`` message ``reactive.js`` applies.

The message names the block and lists the ids to remove, then, in the new order,
each row to put: its new HTML (a changed or new row, morphed into place), and, for
a row that moves or is new, the row it now follows (``after``) or, first in the
list, the unmoved row it now precedes (``before``). Rows that keep their relative
order (the longest such run) do not move at all.
"""

from __future__ import annotations

import bisect
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["RowsPatch", "row_ops"]


class RowsPatch(str):
    """A ``reactive-rows`` message (JSON), told apart from a block's HTML."""

    __slots__ = ()


def row_ops(
    block: str, shown: Sequence[str], keys: Sequence[str], rows: Mapping[str, str]
) -> RowsPatch | None:
    """The message that turns ``shown`` (row ids, in page order) into ``keys``,
    with ``rows`` the HTML of every changed or new row; None when it cannot be
    done row by row (no row stays where it was: the block is sent whole)."""
    wanted = set(keys)
    removed = [key for key in shown if key not in wanted]
    kept = [key for key in shown if key in wanted]
    position = {key: number for number, key in enumerate(keys)}
    stable = _unmoved(kept, position)
    if not stable:
        return None
    first_stable = next(key for key in keys if key in stable)
    was_shown = set(shown)
    puts = []
    for number, key in enumerate(keys):
        put: dict[str, str] = {}
        if key not in stable:
            if number:
                put["after"] = keys[number - 1]
            else:
                put["before"] = first_stable
        if key in rows:
            put["html"] = rows[key]
        elif key not in was_shown:
            return None  # a new row nobody rendered
        if put:
            puts.append({"id": key, **put})
    message: dict[str, object] = {"block": block}
    if removed:
        message["remove"] = removed
    if puts:
        message["put"] = puts
    if len(message) == 1:
        return RowsPatch("")
    return RowsPatch(json.dumps(message, separators=(",", ":")))


def _unmoved(kept: list[str], position: dict[str, int]) -> set[str]:
    """The longest run of ``kept`` (old order) that is also in new order."""
    tails: list[int] = []  # smallest new position ending a run of each length
    ends: list[int] = []  # the index in ``kept`` of that run's last row
    previous: list[int] = [-1] * len(kept)
    for index, key in enumerate(kept):
        place = position[key]
        length = bisect.bisect_left(tails, place)
        if length == len(tails):
            tails.append(place)
            ends.append(index)
        else:
            tails[length] = place
            ends[length] = index
        previous[index] = ends[length - 1] if length else -1
    unmoved: set[str] = set()
    index = ends[-1] if ends else -1
    while index >= 0:
        unmoved.add(kept[index])
        index = previous[index]
    return unmoved
