"""The index-attribute registry as the archive and DICOMweb layers name it.

The table itself is apps.dicom.index_attributes (plain Python, so the DICOM core can extract by it
too); see docs/architecture.md, "The index-attribute registry".
"""

from apps.dicom.index_attributes import (
    BY_KEYWORD,
    DEFAULT_RETURN_KEYWORDS,
    INDEXED_ATTRIBUTES,
    ColumnKind,
    IndexedAttribute,
    Level,
    attributes_of,
    levels_up_to,
)

__all__ = [
    "BY_KEYWORD", "DEFAULT_RETURN_KEYWORDS", "INDEXED_ATTRIBUTES", "ColumnKind", "IndexedAttribute", "Level",
    "attributes_of", "levels_up_to",
]
