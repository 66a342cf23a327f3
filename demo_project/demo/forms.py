from __future__ import annotations

from django import forms

from demo_project.demo.models import Document


class DocumentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Document
        fields = ("title", "body")
        widgets = {"body": forms.Textarea(attrs={"rows": 6})}  # noqa: RUF012
