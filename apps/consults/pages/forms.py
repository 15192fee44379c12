from __future__ import annotations

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.consult_routing.models import ConsultState, Priority
from apps.consults.selectors import WORKLIST_STATE_GROUPS, WorklistFilter, WorklistSort


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


#: How the pages name each state and priority (the API keeps the values).
STATE_LABELS: dict[str, str | Promise] = {
    ConsultState.DRAFT: _("draft"), ConsultState.SUBMITTED: _("submitted"),
    ConsultState.RETURNED_FOR_INFO: _("returned for information"), ConsultState.ACCEPTED: _("accepted"),
    ConsultState.REJECTED: _("rejected"), ConsultState.ASSIGNED: _("assigned"), ConsultState.IN_READING: _("in reading"),
    ConsultState.REPORTED: _("reported"), ConsultState.FINALIZED: _("finalized"), ConsultState.DELIVERED: _("delivered"),
    ConsultState.AMENDED: _("amended"), ConsultState.CANCELLED: _("cancelled"),
}
PRIORITY_LABELS: dict[str, str | Promise] = {
    Priority.STAT: _("stat"), Priority.URGENT: _("urgent"), Priority.ROUTINE: _("routine"),
}


class WorklistFilterForm(forms.Form):
    """The worklist's filters and sort (GET); an invalid value falls back to its default."""

    state = forms.ChoiceField(label=_("State"), required=False, choices=[
        ("", pgettext_lazy("consults in the worklist", "Open")), ("closed", _("Closed")), ("all", _("All")),
        *[(state, label) for state, label in STATE_LABELS.items() if state != ConsultState.DRAFT]])
    priority = forms.ChoiceField(label=_("Priority"), required=False,
                                 choices=[("", _("Any")), *PRIORITY_LABELS.items()])
    modality = forms.CharField(label=_("Modality"), required=False, max_length=16,
                               widget=forms.TextInput(attrs={"size": 4}))
    clinic = forms.ChoiceField(label=_("Clinic"), required=False)
    mine = forms.BooleanField(label=_("Mine only"), required=False)
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=[
        (WorklistSort.PRIORITY, _("Priority")), (WorklistSort.DUE, _("Due")), (WorklistSort.RECEIVED, _("Received"))])

    def __init__(self, *args: object, clinics: list[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["clinic"].choices = [("", _("Any")), *clinics]  # type: ignore[attr-defined]

    def worklist_filter(self, username: str) -> WorklistFilter:
        values = self.cleaned_data if self.is_valid() else {}
        state = values.get("state", "")
        if state in ("", "closed"):
            states = tuple(sorted(WORKLIST_STATE_GROUPS["closed" if state else "open"]))
        else:
            states = () if state == "all" else (state,)
        return WorklistFilter(
            states=states, priority=values.get("priority", ""), modality=values.get("modality", "").upper(),
            clinic_slug=values.get("clinic", ""), mine=username if values.get("mine") else "",
            sort=values.get("sort") or WorklistSort.PRIORITY,
        )

