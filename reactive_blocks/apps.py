from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed

logger = logging.getLogger("reactive_blocks")


class ReactiveBlocksConfig(AppConfig):
    name = "reactive_blocks"
    verbose_name = "Reactive blocks"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from reactive_blocks import checks  # noqa: F401 - registers the system checks
        from reactive_blocks.runtime import get_index
        from reactive_blocks.streams.sessions import on_logged_out

        setting_changed.connect(_reset_on_change, dispatch_uid="reactive_blocks_reset")
        user_logged_out.connect(on_logged_out, dispatch_uid="reactive_blocks_logout")
        # Build the index now, so the first stream does not pay for the scan and
        # template problems show in the log at start-up. Never fail start-up.
        try:
            get_index()
        except Exception:
            logger.exception(
                "reactive_blocks could not scan the templates at start-up."
            )


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    from reactive_blocks.runtime import reset_bus, reset_index

    if setting == "REACTIVE_BLOCKS":
        reset_bus()
        reset_index()
    elif setting in {"TEMPLATES", "INSTALLED_APPS"}:
        reset_index()
