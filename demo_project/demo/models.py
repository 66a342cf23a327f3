"""The demo's data: documents people watch and edit, their comments, and mentions.

Every save is tracked: a document's page (scope ``doc-<pk>``) and the list of all
documents (scope ``documents``) re-render what it changed, in every open window.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

import reactive_blocks

MENTION = re.compile(r"@(\w{1,150})")


def document_scopes(document: Document) -> list[str]:
    return [f"doc-{document.pk}", "documents"]


# Ticking "private" may lock viewers out: their streams are checked before the
# change that did it is rendered for anyone.
@reactive_blocks.track(scope=document_scopes, prefix="doc", access_fields=["private"])
class Document(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="documents",
    )
    # A private document is shown and streamed to its owner only.
    private = models.BooleanField(default=False)
    # Every save carries the version it was made from: a save from an older one
    # is refused instead of overwriting what someone else wrote meanwhile.
    version = models.PositiveIntegerField(default=1)
    last_editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    edits = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.title

    @property
    def word_count(self) -> int:
        return len(self.body.split())

    def visible_to(self, user: object) -> bool:
        return not self.private or (
            getattr(user, "is_authenticated", False)
            and self.owner_id == getattr(user, "pk", None)
        )


class CommentManager(models.Manager["Comment"]):
    def get_queryset(self) -> models.QuerySet[Comment]:
        # A comment is shown with its author's name: one query for the list.
        return super().get_queryset().select_related("author")


@reactive_blocks.track(scope="doc-{document_id}", prefix="doc.comments")
class Comment(models.Model):
    document = models.ForeignKey(
        Document, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL
    )
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CommentManager()

    class Meta:
        ordering = ("created_at", "pk")

    def __str__(self) -> str:
        return f"{self.author}: {self.body[:40]}"

    def mentioned(self) -> set[str]:
        return set(MENTION.findall(self.body))


class Mention(models.Model):
    """A user named in a comment: shown to that user alone until dismissed."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions"
    )
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE)
    seen = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"@{self.user} in {self.comment}"
