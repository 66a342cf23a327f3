from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


class ReactiveBlocksConfig(AppConfig):
    name = "reactive_blocks"
    verbose_name = "Reactive blocks"

    def ready(self) -> None:
        setting_changed.connect(_reset_on_change, dispatch_uid="reactive_blocks_reset")


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "REACTIVE_BLOCKS":
        from reactive_blocks.runtime import reset

        reset()
