"""Filters of the consult pages: SLA time left, age and sex, state and priority names."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from apps.accounts.roles import Role
from apps.consults.pages.forms import PRIORITY_LABELS, STATE_LABELS
from apps.consults.selectors import PatientLine

register = template.Library()

# DICOM Age String units (PS3.5 §6.2 AS) and Patient's Sex values (PS3.3 §C.7.1.1).
AGE_UNITS = {"Y": gettext_lazy("%(count)s y"), "M": gettext_lazy("%(count)s mo"), "W": gettext_lazy("%(count)s wk"),
             "D": gettext_lazy("%(count)s d")}
SEX_LABELS = {"M": pgettext_lazy("patient sex", "M"), "F": pgettext_lazy("patient sex", "F"),
              "O": pgettext_lazy("patient sex", "O")}


def _duration(minutes: int) -> str:
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)s min") % {"minutes": minutes}


@register.filter
def sla_left(due: datetime | None, now: datetime | None = None) -> str:
    """"2 h 10 min left" or "overdue by 35 min" (whole minutes; the page's script keeps it current)."""
    if due is None:
        return ""
    seconds = (due - (now or timezone.now())).total_seconds()
    if seconds >= 0:
        return _("%(duration)s left") % {"duration": _duration(int(seconds // 60))}
    return _("overdue by %(duration)s") % {"duration": _duration(int(-seconds // 60))}


@register.filter
def age_sex(patient: PatientLine) -> str:
    """"47 y / F" from a DICOM Age String ("047Y") and Patient's Sex; parts that are unknown left out."""
    parts: list[str] = []
    age = patient.age.strip()
    if len(age) >= 2 and age[:-1].isdigit() and age[-1] in AGE_UNITS:
        parts.append(str(AGE_UNITS[age[-1]]) % {"count": int(age[:-1])})
    if patient.sex in SEX_LABELS:
        parts.append(str(SEX_LABELS[patient.sex]))
    return " / ".join(parts)


@register.filter
def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


@register.filter
def priority_label(priority: str) -> str:
    return str(PRIORITY_LABELS.get(priority, priority))


ROLE_LABELS: dict[str, Promise] = {
    Role.CLINIC_ADMIN: gettext_lazy("clinic admin"), Role.TECHNOLOGIST: gettext_lazy("technologist"),
    Role.REFERRING_PHYSICIAN: gettext_lazy("referring physician"), Role.HOSPITAL_ADMIN: gettext_lazy("hospital admin"),
    Role.CONSULT_COORDINATOR: gettext_lazy("consult coordinator"), Role.RADIOLOGIST: gettext_lazy("radiologist"),
    Role.OPERATOR: gettext_lazy("operator"),
}


@register.filter
def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


@register.filter
def is_past(moment: datetime | None) -> bool:
    return moment is not None and moment < timezone.now()
