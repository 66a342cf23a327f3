"""An INDEX_BUILDERS function for the runtime tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reactive_blocks.index import DependencyIndex

NOT_CALLABLE = 42


def register(index: DependencyIndex) -> None:
    index.derive("doc.word_count", from_paths={"doc.content"})
