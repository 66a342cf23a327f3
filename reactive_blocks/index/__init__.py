"""The dependency index: which template blocks read which context paths."""

from __future__ import annotations

from reactive_blocks.index.core import BlockRef, DependencyIndex

__all__ = ["BlockRef", "DependencyIndex"]
