"""Stream routing under the name DESIGN gives it: see ``reactive_blocks.streams.routing``."""

from __future__ import annotations

from reactive_blocks.streams.routing import not_found, stream_path, stream_router

__all__ = ["not_found", "stream_path", "stream_router"]
