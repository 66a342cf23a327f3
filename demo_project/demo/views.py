"""Pages of the demo: a list, and a live document page with an htmx edit form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import F
from django.shortcuts import get_object_or_404, render
from django.utils.html import format_html, format_html_join

from demo_project.demo.forms import DocumentForm
from demo_project.demo.models import Document
from reactive_blocks.rendering import render_block

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

TEMPLATE = "demo/document_detail.html"
# Blocks the editing tab refreshes itself: its own stream does not echo its change.
OWN_BLOCKS = {"title": "doc-title", "body": "doc-body", "stats": "doc-stats"}


def document_list(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"documents": Document.objects.order_by("pk")})


def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk)
    return render(
        request, TEMPLATE, {"doc": document, "form": DocumentForm(instance=document)}
    )


def document_edit(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document, pk=pk)
    form = DocumentForm(request.POST, instance=document)
    if form.is_valid():
        form.instance.edits = F("edits") + 1
        form.save()
        document.refresh_from_db()
        form = DocumentForm(instance=document)
    response = render(request, "demo/_form.html", {"doc": document, "form": form})
    # Out-of-band swaps update this tab's blocks from the same templates.
    blocks = format_html_join(
        "",
        '<div hx-swap-oob="innerHTML:#{}">{}</div>',
        (
            (dom_id, render_block(TEMPLATE, name, {"doc": document}, request))
            for name, dom_id in OWN_BLOCKS.items()
        ),
    )
    response.content += format_html("{}", blocks).encode()
    return response
