"""Create the demo's users and sample documents; safe to run again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo_project.demo.models import Comment, Document

# Shown on the login page: this demo runs on a developer's machine only.
USERS = {"alice": "alice-demo", "bob": "bob-demo"}
DOCUMENTS = [
    (
        "Welcome to reactive_blocks",
        "Open this page in two windows, one as alice and one as bob.\n"
        "Edit it in one: the other shows the change at once, and the word count too.",
        "alice",
        False,
    ),
    (
        "Meeting notes",
        "Agenda: live pages without writing JavaScript.\n"
        "Run `python manage.py demo_activity` to watch someone else edit.",
        "bob",
        False,
    ),
    ("Alice's private draft", "Only alice can open or watch this one.", "alice", True),
]


class Command(BaseCommand):
    help = "Create the users alice and bob and the sample documents if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        if users.filter(username__in=USERS).count() == len(USERS):
            self.stdout.write("The demo's users already exist.")
        for name, password in USERS.items():
            if not users.filter(username=name).exists():
                users.create_user(name, f"{name}@example.com", password)
                self.stdout.write(f"Created user {name} (password: {password}).")
        for title, body, owner, private in DOCUMENTS:
            document, created = Document.objects.get_or_create(
                title=title,
                defaults={
                    "body": body,
                    "owner": users.get(username=owner),
                    "private": private,
                },
            )
            if created:
                self.stdout.write(f"Created document {title!r}.")
                if not private:
                    Comment.objects.create(
                        document=document,
                        author=users.get(username=owner),
                        body="Comments are live too; try mentioning @alice or @bob.",
                    )
