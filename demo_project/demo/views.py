"""Pages of the demo: the live list, a live document, editing without lost updates,
comments with @mentions, and a collaborator that edits on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html, format_html_join
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from demo_project.demo.activity import ACTIVITY_SALT, step
from demo_project.demo.forms import CommentForm, DocumentForm
from demo_project.demo.models import Comment, Document, Mention
from demo_project.streams import notifications_for, public_documents, viewers_of
from reactive_blocks import emit, get_bus
from reactive_blocks.rendering import render_block

if TYPE_CHECKING:
    from django.http import HttpRequest

TEMPLATE = "demo/document_detail.html"
# Blocks the editing tab refreshes itself: its own stream does not echo its change.
OWN_BLOCKS = {
    "title": "doc-title",
    "body": "doc-body",
    "stats": "doc-stats",
    "version": "doc-version",
}


def document_list(request: HttpRequest) -> HttpResponse:
    """The live list: an ordinary view, re-run for each browser on a change."""
    documents = public_documents()
    if request.user.is_authenticated:
        mine = Document.objects.filter(owner=request.user)
        documents = (documents | mine).select_related("last_editor")
    return render(request, "home.html", {"documents": documents})


def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk)
    if not document.visible_to(request.user):
        return render(request, "demo/private.html", {"doc": document}, status=403)
    return render(request, TEMPLATE, detail_context(request, document))


def detail_context(request: HttpRequest, document: Document, **extra: Any) -> dict:
    return {
        "doc": document,
        "presence": viewers_of(f"doc-{document.pk}"),
        "notifications": notifications_for(request.user, document.pk),
        "form": DocumentForm(instance=document, initial={"version": document.version}),
        "comment_form": CommentForm(),
        **extra,
    }


@login_required
@require_POST
def document_edit(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        document = get_object_or_404(Document.objects.select_for_update(), pk=pk)
        if not document.visible_to(request.user):
            return HttpResponseForbidden("This document is private.")
        was_private = document.private  # the form writes into the instance
        form = DocumentForm(request.POST, instance=document)
        conflict = None
        if form.is_valid():
            if form.cleaned_data["version"] != document.version:
                # Someone saved since this form was opened: refuse, keep the text.
                document.refresh_from_db()
                conflict = document
            else:
                if document.owner_id != request.user.pk:
                    form.instance.private = was_private  # only the owner decides
                form.instance.version = F("version") + 1
                form.instance.edits = F("edits") + 1
                form.instance.last_editor = request.user
                form.save()
                document.refresh_from_db()
                form = DocumentForm(
                    instance=document, initial={"version": document.version}
                )
    response = render(
        request,
        "demo/_form.html",
        {"doc": document, "form": form, "conflict": conflict},
    )
    if conflict is None and not form.errors:
        response.content += own_blocks(request, document)
    return response


def own_blocks(
    request: HttpRequest, document: Document, blocks: dict[str, str] = OWN_BLOCKS
) -> bytes:
    """Out-of-band swaps that update the author's tab from the same templates: its
    own stream does not echo the change back."""
    context = {"doc": document}
    swaps = format_html_join(
        "",
        '<div hx-swap-oob="innerHTML:#{}">{}</div>',
        (
            (dom_id, render_block(TEMPLATE, name, context, request))
            for name, dom_id in blocks.items()
        ),
    )
    return format_html("{}", swaps).encode()


@login_required
@require_POST
def document_create(request: HttpRequest) -> HttpResponse:
    document = Document.objects.create(
        title=f"Untitled, by {request.user.get_username()}",
        owner=request.user,
        last_editor=request.user,
    )
    return redirect("document", document.pk)


@login_required
@require_POST
def document_delete(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk, owner=request.user)
    document.delete()
    # Its open pages reconnect, are refused (it is gone) and say so.
    transaction.on_commit(lambda: get_bus().close(f"doc-{pk}"))
    return redirect("home")


@login_required
@require_POST
def comment_create(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk)
    if not document.visible_to(request.user):
        return HttpResponseForbidden("This document is private.")
    form = CommentForm(request.POST)
    if form.is_valid():
        with transaction.atomic():
            comment = form.save(commit=False)
            comment.document, comment.author = document, request.user
            comment.save()
            mention(comment)
        response = render(
            request, "demo/_comment_form.html", {"doc": document, "form": CommentForm()}
        )
        response.content += own_blocks(request, document, {"comments": "comments"})
        return response
    return render(request, "demo/_comment_form.html", {"doc": document, "form": form})


def mention(comment: Comment) -> None:
    """Notify the users a comment names, and them alone."""
    named = get_user_model().objects.filter(username__in=comment.mentioned())
    document = comment.document
    people = [
        user
        for user in named
        if user.pk != comment.author_id and document.visible_to(user)
    ]
    Mention.objects.bulk_create(Mention(user=u, comment=comment) for u in people)
    if people:
        emit(
            f"doc-{comment.document_id}",
            {"notifications"},
            audience=[user.pk for user in people],
        )


@login_required
@require_POST
def mentions_seen(request: HttpRequest, pk: int) -> HttpResponse:
    Mention.objects.filter(user=request.user, comment__document_id=pk).update(seen=True)
    # This tab's stream would not echo it: refresh the block here.
    return HttpResponse(
        render_block(TEMPLATE, "notifications", {"notifications": []}, request)
    )


@csrf_exempt
@require_POST
def activity(request: HttpRequest) -> JsonResponse:
    """One edit by the demo's collaborator, asked for by ``manage.py demo_activity``
    (signed with the project's key: no one else can trigger it)."""
    try:
        signing.loads(request.POST.get("token", ""), salt=ACTIVITY_SALT, max_age=60)
    except signing.BadSignature:
        return JsonResponse({"error": "bad token"}, status=403)
    return JsonResponse({"done": step()})
