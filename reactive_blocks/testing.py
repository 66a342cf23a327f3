"""Helpers for your own tests: which change events does this code emit?"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from django.db import DEFAULT_DB_ALIAS
from django.test import TestCase

from reactive_blocks.runtime import get_bus
from reactive_blocks.tracking.commit import new_batch
from reactive_blocks.tracking.registry import is_page_scope_only

if TYPE_CHECKING:
    from collections.abc import Iterator

    from reactive_blocks.events import ChangeEvent

__all__ = ["capture_events"]


@contextlib.contextmanager
def capture_events(
    *, using: str = DEFAULT_DB_ALIAS, execute: bool = True, page_scopes: bool = False
) -> Iterator[list[ChangeEvent]]:
    """Collect the ChangeEvents emitted inside the block, as they are emitted.

    Events wait for the transaction to commit. Inside a test case's transaction
    (which never commits) the on_commit callbacks registered in the block are run
    when it ends, like Django's ``captureOnCommitCallbacks(execute=True)``; pass
    ``execute=False`` to leave them pending. Rolled-back changes never appear.
    The scopes that live pages follow (a model's, its rows') are left out unless
    ``page_scopes=True``.
    """
    events: list[ChangeEvent] = []
    new_batch(using)

    def collect(event: ChangeEvent) -> None:
        if page_scopes or not is_page_scope_only(event.scope):
            events.append(event)

    remove = get_bus().add_listener(collect)
    try:
        with TestCase.captureOnCommitCallbacks(using=using, execute=execute):
            yield events
    finally:
        remove()
