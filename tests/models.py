"""Models for the tracking tests (the tests app has no migrations: tables are synced)."""

from __future__ import annotations

from django.db import models

import reactive_blocks


class Author(models.Model):
    name = models.CharField(max_length=100)


@reactive_blocks.track(scope="tag-{pk}", prefix="tag")
class Tag(models.Model):
    name = models.CharField(max_length=50)


class Document(models.Model):
    title = models.CharField(max_length=200, default="")
    content = models.TextField(default="")
    version = models.IntegerField(default=1)
    author = models.ForeignKey(Author, null=True, blank=True, on_delete=models.SET_NULL)
    meta = models.JSONField(default=dict, blank=True)
    secret = models.CharField(max_length=50, default="", blank=True)
    # Set: only this username may watch the document (an access field).
    locked_to = models.CharField(max_length=150, default="", blank=True)
    tags = models.ManyToManyField(Tag, related_name="documents", blank=True)


class Comment(models.Model):
    document = models.ForeignKey(
        Document, related_name="comments", on_delete=models.CASCADE
    )
    body = models.TextField()


reactive_blocks.track(
    Document,
    scope="doc-{pk}",
    prefix="doc",
    exclude=["secret", "locked_to"],
    access_fields=["locked_to"],
)
reactive_blocks.track(
    Comment, scope=lambda c: [f"doc-{c.document_id}", "activity"], prefix="doc.comments"
)


class ProxyDocument(Document):
    """Tracked through its parent."""

    class Meta:
        proxy = True


class Report(Document):
    """A multi-table child: tracked through its parent."""

    summary = models.TextField(default="")


@reactive_blocks.track(scope="person-{pk}", prefix="person")
class Person(models.Model):
    name = models.CharField(max_length=50)
    friends = models.ManyToManyField("self", blank=True)


@reactive_blocks.track(scope="stamped-{pk}", prefix="st")
class Stamped(models.Model):
    title = models.CharField(max_length=50)
    updated_at = models.DateTimeField(auto_now=True)


@reactive_blocks.track(scope="shelf-{pk}", prefix="shelf", exclude=["labels"])
class Shelf(models.Model):
    labels = models.ManyToManyField(Tag, related_name="shelves", blank=True)


@reactive_blocks.track
class Note(models.Model):
    """Tracked bare: the live pages of tests/pages_site follow it by themselves."""

    title = models.CharField(max_length=200, default="")
    body = models.TextField(default="", blank=True)
    private = models.BooleanField(default=False)
    owner = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL
    )


@reactive_blocks.track
class Remark(models.Model):
    note = models.ForeignKey(Note, related_name="remarks", on_delete=models.CASCADE)
    text = models.CharField(max_length=200)
