"""``manage.py reactive_status``: streams, scopes, presence and bus health of every
process that reports through the bus."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from reactive_blocks.runtime import get_bus

if TYPE_CHECKING:
    from argparse import ArgumentParser


class Command(BaseCommand):
    help = (
        "Show every process that serves streams: its streams, scopes, presence and "
        "bus health, as each last reported it."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print the reports as JSON."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bus = get_bus()
        try:
            reports = bus.statuses()
        except DatabaseError as exc:
            raise CommandError(
                f"The reports could not be read ({exc}); has `manage.py migrate` "
                "created the bus's tables?"
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"processes": reports}, indent=2))
            return
        name = type(bus).__name__
        if not bus.crosses_processes:
            self.stdout.write(
                f"The bus is {name}, which lives in one process: only this command's "
                "own process can be shown. Use DatabaseBus (the default) or RedisBus."
            )
        self.stdout.write(f"{len(reports)} process(es) report through {name}.")
        for report in reports:
            self.stdout.write("")
            self.stdout.write("\n".join(describe(report)))
        totals = presence(reports)
        if totals:
            self.stdout.write("")
            self.stdout.write("Connections by scope, every process:")
            for scope, count in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
                self.stdout.write(f"  {scope}  {count}")


def describe(report: dict[str, Any]) -> list[str]:
    """One process's report, as lines of text."""
    now = time.time()
    bus = report.get("bus") or {}
    up = _duration(now - float(report.get("started", now)))
    ago = max(0.0, now - float(report.get("reported", now)))
    lines = [f"{report.get('process')}  up {up}, reported {ago:.1f} s ago"]
    health = "reachable" if bus.get("reachable") else "UNREACHABLE"
    parts = [
        f"bus: {health}",
        f"epoch {bus.get('epoch') or '-'}",
        f"emitted {bus.get('emitted', 0)}",
        f"dropped {bus.get('dropped', 0)}",
    ]
    if "outbox_queued" in bus:
        parts.append(
            f"outbox {bus['outbox_queued']} queued / {bus['outbox_dropped']} dropped"
        )
    refused = bus.get("refused") or {}
    if refused:
        parts.append("refused " + ", ".join(f"{k}: {v}" for k, v in refused.items()))
    lines.append("  " + ", ".join(parts))
    streams = report.get("streams")
    if isinstance(streams, dict) and "open" in streams:
        renders = streams.get("renders") or {}
        lines.append(
            f"  streams: {streams['open']} open, {streams.get('visitors', 0)} "
            f"visitors, {streams.get('hubs', 0)} hubs; "
            f"{renders.get('renders', 0)} blocks rendered"
        )
    else:
        lines.append("  streams: none served yet")
    scopes = report.get("scopes") or []
    count = report.get("scope_count", len(scopes))
    shown = f" (the {len(scopes)} busiest)" if count > len(scopes) else ""
    lines.append(f"  scopes: {count}{shown}")
    for scope in scopes:
        lines.append(
            f"    {scope['scope']}  {scope['connections']} connection(s), "
            f"{scope['subscribers']} subscription(s)"
        )
    return lines


def presence(reports: list[dict[str, Any]]) -> dict[str, int]:
    """Connections per scope, summed over every process's busiest scopes."""
    totals: dict[str, int] = {}
    for report in reports:
        for scope in report.get("scopes") or []:
            totals[scope["scope"]] = totals.get(scope["scope"], 0) + int(
                scope["connections"]
            )
    return {scope: count for scope, count in totals.items() if count}


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"
