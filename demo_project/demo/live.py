"""What the demo teaches the dependency index beyond its templates."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reactive_blocks import DependencyIndex


def build_index(index: DependencyIndex) -> None:
    """Run after every build of the index (REACTIVE_BLOCKS['INDEX_BUILDERS'])."""
    # The word count is computed from the body: a block showing it re-renders
    # when the body changes.
    index.derive("doc.word_count", from_paths={"doc.body"})
    # The list page shows every document: any change of one is a change of it.
    index.derive("documents", from_paths={"doc"})
    # The editing form is made from the document (the editor block shows it).
    index.derive("form", from_paths={"doc"})
