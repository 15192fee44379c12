from __future__ import annotations

from django import forms

from apps.consult_routing.models import Priority


class NewConsultForm(forms.Form):
    study_instance_uid = forms.ChoiceField(label="Study")
    hospital = forms.ChoiceField(label="Hospital")
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.ROUTINE)
    clinical_question = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    relevant_history = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=8000, required=False)

    def __init__(self, *args: object, studies: list[tuple[str, str]], hospitals: list[tuple[str, str]],
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["study_instance_uid"].choices = studies  # type: ignore[attr-defined]
        self.fields["hospital"].choices = hospitals  # type: ignore[attr-defined]


class ReportForm(forms.Form):
    findings = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), max_length=20000, required=False)
    impression = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=8000, required=False)
    recommendations = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=8000, required=False)
    key_images = forms.CharField(widget=forms.HiddenInput, required=False)

    def key_image_uids(self) -> list[str]:
        return [uid for uid in self.cleaned_data.get("key_images", "").split() if uid]
