"""Modality (0008,0060) defined terms (PS3.3 §C.7.3.1.1.1) the platform treats alike (no Django imports)."""

from __future__ import annotations

from typing import Final

#: Series of these modalities hold no images to show: structured reports, segmentations, key object
#: selections, presentation states, RT structure sets and encapsulated documents. Viewers, films and
#: AI routing skip them.
NON_IMAGE_MODALITIES: Final = frozenset({"SR", "SEG", "KO", "PR", "RTSTRUCT", "DOC"})
