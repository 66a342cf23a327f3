"""The demo's collaborator: small edits, so that a single visitor sees pages change."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from demo_project.demo.models import Comment, Document

ACTIVITY_SALT = "demo_project.demo.activity"
ROBOT = "robot"
LINES = itertools.cycle(
    [
        "Decided: ship the live list first.",
        "Question: who reviews the docs?",
        "Idea: presence on every page.",
        "Done: the stale-save check.",
    ]
)


def step() -> str:
    """Make one change as the robot user; say what it did."""
    robot, _ = get_user_model().objects.get_or_create(username=ROBOT)
    stamp = timezone.localtime().strftime("%H:%M:%S")
    line = next(LINES)
    with transaction.atomic():
        # Read inside the transaction: an edit someone saved a moment ago is
        # built upon, never overwritten.
        document = (
            Document.objects.select_for_update()
            .filter(private=False)
            .order_by("-pk")
            .first()
        )
        if document is None:
            document = Document.objects.create(title="Robot's notes", owner=robot)
            return f"created {document.title!r}"
        if document.edits % 3 == 2:
            Comment.objects.create(document=document, author=robot, body=line)
            Document.objects.filter(pk=document.pk).update(edits=F("edits") + 1)
            return f"commented on {document.title!r}"
        document.body = f"{document.body.rstrip()}\n{stamp} {line}"
        document.version = F("version") + 1
        document.edits = F("edits") + 1
        document.last_editor = robot
        document.save()
    return f"edited {document.title!r}"
