"""``manage.py reactive_check``: validate the reactive contract, explain lookups."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.core.management.base import BaseCommand, CommandError

from reactive_blocks.checks import CHECK_IDS, TAG
from reactive_blocks.runtime import get_index

if TYPE_CHECKING:
    from argparse import ArgumentParser

LEVELS = {"ERROR": checks.ERROR, "WARNING": checks.WARNING}


class Command(BaseCommand):
    help = (
        "Check that templates, registered blocks, derived paths and emitted paths fit "
        "together; optionally explain which blocks a change re-renders."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--fail-level",
            choices=sorted(LEVELS),
            default="ERROR",
            help="Exit non-zero at this level or above (default: ERROR).",
        )
        parser.add_argument(
            "--deploy", action="store_true", help="Also run the deployment checks."
        )
        parser.add_argument(
            "--explain",
            nargs="+",
            metavar="PATH",
            help="Show the blocks that a change to these paths re-renders.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print machine-readable results."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        messages = [
            message
            for message in checks.run_checks(
                tags=[TAG], include_deployment_checks=options["deploy"]
            )
            if not message.is_silenced()
        ]
        explained = None
        if options["explain"]:
            try:
                explained = get_index().explain_affected(frozenset(options["explain"]))
            except (TypeError, ValueError) as exc:
                raise CommandError(f"--explain: {exc}") from exc
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(messages, explained), indent=2))
        else:
            self._print(messages, explained)
        failing = [m for m in messages if m.level >= LEVELS[options["fail_level"]]]
        if failing:
            raise CommandError(
                f"reactive_check found {len(failing)} problem(s) at "
                f"{options['fail_level']} level or above.",
                returncode=1,
            )

    def _print(
        self, messages: list[checks.CheckMessage], explained: dict[str, Any] | None
    ) -> None:
        if explained is not None:
            self.stdout.write(_explanation(explained))
        for message in sorted(messages, key=lambda m: (-m.level, m.id or "")):
            style = self.style.ERROR if message.is_serious() else self.style.WARNING
            self.stdout.write(style(f"[{_name(message)}] {message}"))
        errors = sum(m.is_serious() for m in messages)
        self.stdout.write(
            f"reactive_check: {errors} error(s), {len(messages) - errors} warning(s)."
        )


def _name(message: checks.CheckMessage) -> str:
    """The check's name (``reactive_block``, ``reactive_cycle``...) from its id."""
    code = (message.id or "").rpartition(".")[2]
    return CHECK_IDS.get(code, "").split(":", 1)[0] or code


def _explanation(explained: dict[str, Any]) -> str:
    lines = [
        f"Changed paths: {', '.join(sorted(explained['original_paths']))}",
        f"Derived paths: {', '.join(sorted(explained['derived_paths'])) or '(none)'}",
        "Re-rendered blocks:"
        if explained["affected_blocks"]
        else "Re-rendered blocks: (none)",
    ]
    for block in explained["affected_blocks"]:
        target = f"  #{block['target']}" if block["target"] else ""
        lines.append(f"  {block['template']} :: {block['block']}{target}")
    for block in explained.get("reads_everything", ()):
        lines.append(
            f"  ({block['template']} :: {block['block']} reads everything: {block['reason']})"
        )
    return "\n".join(lines)


def _as_json(
    messages: list[checks.CheckMessage], explained: dict[str, Any] | None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "messages": [
            {
                "id": m.id,
                "name": _name(m),
                "level": "ERROR" if m.is_serious() else "WARNING",
                "message": m.msg,
                "hint": m.hint,
                "obj": str(m.obj) if m.obj is not None else None,
            }
            for m in messages
        ]
    }
    if explained is not None:
        result["explain"] = {
            key: sorted(value) if isinstance(value, set) else value
            for key, value in explained.items()
        }
    return result
