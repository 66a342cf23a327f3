"""The stream consumer under the name DESIGN gives it: see ``reactive_blocks.streams``."""

from __future__ import annotations

from reactive_blocks.streams.consumer import ReactiveStreamConsumer

__all__ = ["ReactiveStreamConsumer"]
