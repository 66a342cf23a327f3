"""A management command that saves a tracked model (no request, so no origin)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tests.models import Document


class Command(BaseCommand):
    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("pk", type=int)
        parser.add_argument("title")

    def handle(self, *args: Any, **options: Any) -> None:
        document = Document.objects.get(pk=options["pk"])
        document.title = options["title"]
        document.save()
