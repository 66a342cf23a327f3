"""Create the demo's sample data; safe to run again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo_project.demo.models import Document

DOCUMENTS = [
    (
        "Welcome to reactive_blocks",
        "Edit this text in one window.\nWatch it change in another.",
    ),
    ("Meeting notes", "Agenda: live pages without writing JavaScript."),
]


class Command(BaseCommand):
    help = "Create the demo user (demo / demo) and sample documents if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="demo").exists():
            user_model.objects.create_superuser("demo", "demo@example.com", "demo")
            self.stdout.write("Created user demo (password: demo).")
        else:
            self.stdout.write("User demo already exists.")
        for title, body in DOCUMENTS:
            _, created = Document.objects.get_or_create(
                title=title, defaults={"body": body}
            )
            if created:
                self.stdout.write(f"Created document {title!r}.")
