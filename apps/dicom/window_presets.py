"""CT window presets (no Django imports): the named windows, the one a film opens with for a body
part, and the buttons a viewer offers (the reading page and the patient's film page)."""

from __future__ import annotations

from typing import Final

#: Common CT windows in Hounsfield units as (center, width), for films and presets in the viewer.
WINDOW_PRESETS: Final[dict[str, tuple[float, float]]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (40, 40),
    "temporal_bone": (600, 2800),
    "soft_tissue": (50, 350),
    "mediastinum": (40, 400),
    "lung": (-600, 1500),
    "abdomen": (60, 400),
    "liver": (30, 150),
    "bone": (400, 1800),
    "angiography": (300, 600),
}


def gettext_noop(message: str) -> str:
    """Marks a label for `makemessages` (this module is free of Django); templates translate it."""
    return message


#: The CT presets a viewer offers, in the order of its buttons, with their labels (one list for the
#: reading page and the patient's film page).
VIEWER_PRESETS: Final[tuple[tuple[str, str], ...]] = (
    ("lung", gettext_noop("Lung")),
    ("mediastinum", gettext_noop("Mediastinum")),
    ("bone", gettext_noop("Bone")),
    ("brain", gettext_noop("Brain")),
    ("abdomen", gettext_noop("Abdomen")),
)


def viewer_window_presets() -> list[tuple[str, str, float, float]]:
    """(name, label, center, width) of each viewer preset."""
    return [(name, label, *WINDOW_PRESETS[name]) for name, label in VIEWER_PRESETS]

# Body Part Examined (0018,0015) defined terms (PS3.16 Annex L) to the preset a CT film opens with.
_CT_PRESET_BY_BODY_PART: Final[dict[str, str]] = {
    "HEAD": "brain",
    "BRAIN": "brain",
    "SKULL": "bone",
    "HEADNECK": "soft_tissue",
    "NECK": "soft_tissue",
    "CHEST": "mediastinum",
    "THORAX": "mediastinum",
    "LUNG": "lung",
    "CHESTABDOMEN": "abdomen",
    "CHESTABDPELVIS": "abdomen",
    "ABDOMEN": "abdomen",
    "ABDOMENPELVIS": "abdomen",
    "PELVIS": "abdomen",
    "LIVER": "liver",
    "SPINE": "bone",
    "CSPINE": "bone",
    "TSPINE": "bone",
    "LSPINE": "bone",
    "EXTREMITY": "bone",
    "HIP": "bone",
    "KNEE": "bone",
    "ANKLE": "bone",
    "FOOT": "bone",
    "SHOULDER": "bone",
    "ELBOW": "bone",
    "WRIST": "bone",
    "HAND": "bone",
}


def default_window_for(modality: str | None, body_part: str | None) -> tuple[float, float] | None:
    """A sensible (center, width) for a CT body part, or None when the dataset's own VOI should be used.

    Only CT values are in calibrated units (Hounsfield, PS3.3 §C.8.2.1.1.7), so presets apply to CT only.
    """
    if (modality or "").upper() != "CT":
        return None
    key = (body_part or "").upper().replace(" ", "").replace("_", "")
    return WINDOW_PRESETS[_CT_PRESET_BY_BODY_PART.get(key, "soft_tissue")]
