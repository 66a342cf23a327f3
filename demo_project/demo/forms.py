from __future__ import annotations

from django import forms

from demo_project.demo.models import Comment, Document


class DocumentForm(forms.ModelForm):  # type: ignore[type-arg]
    # The version the editor started from, sent back with the save.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = Document
        fields = ("title", "body", "private")
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}  # noqa: RUF012


class CommentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Comment
        fields = ("body",)
        widgets = {  # noqa: RUF012
            "body": forms.Textarea(
                attrs={"rows": 2, "placeholder": "Comment, @mention someone…"}
            )
        }
