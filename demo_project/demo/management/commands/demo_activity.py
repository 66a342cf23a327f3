"""Make a few changes, one every few seconds, so a single visitor sees live updates."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from django.core import signing
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo_project.demo.activity import ACTIVITY_SALT, step
from reactive_blocks import get_bus

MAX_CHANGES = 1000


class Command(BaseCommand):
    help = (
        "Edit and comment as the demo's robot user, a bounded number of times "
        "(Ctrl-C stops it). The default bus carries its saves to the running "
        "server; with the in-process bus they are made by the server (--url)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--changes", type=int, default=20)
        parser.add_argument("--interval", type=float, default=3.0)
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        changes, interval = options["changes"], options["interval"]
        if not 1 <= changes <= MAX_CHANGES:
            raise CommandError(f"--changes must be between 1 and {MAX_CHANGES}.")
        if interval < 0.1:
            raise CommandError("--interval must be at least 0.1 seconds.")
        here = get_bus().crosses_processes
        try:
            for number in range(1, changes + 1):
                done = step() if here else self.ask(options["url"])
                self.stdout.write(f"{number}/{changes}: {done}")
                if number < changes:
                    time.sleep(interval)  # the pace a person would watch
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def ask(self, url: str) -> str:
        token = signing.dumps("step", salt=ACTIVITY_SALT)
        data = urllib.parse.urlencode({"token": token}).encode()
        try:
            with urllib.request.urlopen(
                f"{url.rstrip('/')}/demo/activity/", data=data, timeout=10
            ) as response:
                return str(json.loads(response.read())["done"])
        except OSError as exc:
            raise CommandError(
                f"The demo server at {url} did not answer ({exc}). Start it with "
                f"`make demo`, or pass --url."
            ) from exc
