"""Which DICOM attributes the index keeps, at which level, in which column (PS3.18 §10.6.1.2).

One table used both to match QIDO-RS query keys (selectors) and to write the answers (the DICOMweb
serializers), so the two can never disagree about an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Level(StrEnum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class ColumnKind(StrEnum):
    TEXT = "text"
    UID = "uid"
    PERSON_NAME = "person_name"  # matched on `<column>_search` (normalised) and `<column>_keys` (phonetic)
    DATE = "date"
    TIME = "time"
    DATETIME = "datetime"  # text YYYYMMDDHHMMSS.FFFFFF (apps.dicom.headers.datetime_key): orders as time does
    INTEGER = "integer"
    CODE_ARRAY = "code_array"  # ModalitiesInStudy: matches when any value matches


@dataclass(frozen=True, slots=True)
class IndexedAttribute:
    keyword: str
    tag: str  # 8 hex digits, as in the DICOM JSON model
    vr: str
    level: Level
    column: str  # the column on that level's model
    kind: ColumnKind
    search_column: str = ""  # person names: the normalised copy matched by wild cards and single values
    keys_column: str = ""  # person names: phonetic keys for fuzzy matching (study patient name only)


_S, _SE, _I = Level.STUDY, Level.SERIES, Level.INSTANCE
_K = ColumnKind

INDEXED_ATTRIBUTES: Final[tuple[IndexedAttribute, ...]] = (
    # study level (patient attributes are copied onto the study)
    IndexedAttribute("StudyDate", "00080020", "DA", _S, "study_date", _K.DATE),
    IndexedAttribute("StudyTime", "00080030", "TM", _S, "study_time", _K.TIME),
    IndexedAttribute("AccessionNumber", "00080050", "SH", _S, "accession_number", _K.TEXT),
    IndexedAttribute("ModalitiesInStudy", "00080061", "CS", _S, "modalities_in_study", _K.CODE_ARRAY),
    IndexedAttribute("ReferringPhysicianName", "00080090", "PN", _S, "referring_physician_name", _K.PERSON_NAME,
                     search_column="referring_physician_name_search"),
    IndexedAttribute("StudyDescription", "00081030", "LO", _S, "study_description", _K.TEXT),
    IndexedAttribute("PatientName", "00100010", "PN", _S, "patient_name", _K.PERSON_NAME,
                     search_column="patient_name_search", keys_column="patient_name_keys"),
    IndexedAttribute("PatientID", "00100020", "LO", _S, "patient_id", _K.TEXT),
    IndexedAttribute("IssuerOfPatientID", "00100021", "LO", _S, "issuer_of_patient_id", _K.TEXT),
    IndexedAttribute("PatientBirthDate", "00100030", "DA", _S, "patient_birth_date", _K.DATE),
    IndexedAttribute("PatientSex", "00100040", "CS", _S, "patient_sex", _K.TEXT),
    IndexedAttribute("StudyInstanceUID", "0020000D", "UI", _S, "study_instance_uid", _K.UID),
    IndexedAttribute("StudyID", "00200010", "SH", _S, "study_id", _K.TEXT),
    IndexedAttribute("NumberOfStudyRelatedSeries", "00201206", "IS", _S, "number_of_series", _K.INTEGER),
    IndexedAttribute("NumberOfStudyRelatedInstances", "00201208", "IS", _S, "number_of_instances", _K.INTEGER),
    # series level
    IndexedAttribute("Modality", "00080060", "CS", _SE, "modality", _K.TEXT),
    IndexedAttribute("SeriesDescription", "0008103E", "LO", _SE, "series_description", _K.TEXT),
    IndexedAttribute("BodyPartExamined", "00180015", "CS", _SE, "body_part_examined", _K.TEXT),
    IndexedAttribute("SeriesInstanceUID", "0020000E", "UI", _SE, "series_instance_uid", _K.UID),
    IndexedAttribute("SeriesNumber", "00200011", "IS", _SE, "series_number", _K.INTEGER),
    IndexedAttribute("PerformedProcedureStepStartDate", "00400244", "DA", _SE, "performed_procedure_step_start_date",
                     _K.DATE),
    IndexedAttribute("PerformedProcedureStepStartTime", "00400245", "TM", _SE, "performed_procedure_step_start_time",
                     _K.TIME),
    IndexedAttribute("NumberOfSeriesRelatedInstances", "00201209", "IS", _SE, "number_of_instances", _K.INTEGER),
    # instance level
    IndexedAttribute("SOPClassUID", "00080016", "UI", _I, "sop_class_uid", _K.UID),
    IndexedAttribute("SOPInstanceUID", "00080018", "UI", _I, "sop_instance_uid", _K.UID),
    IndexedAttribute("InstanceNumber", "00200013", "IS", _I, "instance_number", _K.INTEGER),
    IndexedAttribute("Rows", "00280010", "US", _I, "rows", _K.INTEGER),
    IndexedAttribute("Columns", "00280011", "US", _I, "columns", _K.INTEGER),
    IndexedAttribute("NumberOfFrames", "00280008", "IS", _I, "number_of_frames", _K.INTEGER),
    IndexedAttribute("BitsAllocated", "00280100", "US", _I, "bits_allocated", _K.INTEGER),
    IndexedAttribute("AcquisitionDateTime", "0008002A", "DT", _I, "acquisition_datetime", _K.DATETIME),
    IndexedAttribute("AvailableTransferSyntaxUID", "00083002", "UI", _I, "transfer_syntax_uid", _K.UID),
)

BY_KEYWORD: Final = {attribute.keyword: attribute for attribute in INDEXED_ATTRIBUTES}

# What a QIDO-RS answer holds without includefield (PS3.18 Tables 10.6.3-3, -4, -5), plus the
# descriptions viewers list studies and series by.
DEFAULT_RETURN_KEYWORDS: Final[dict[Level, tuple[str, ...]]] = {
    Level.STUDY: (
        "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
        "StudyDescription", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
        "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    ),
    Level.SERIES: (
        "Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    ),
    Level.INSTANCE: (
        "SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns", "NumberOfFrames",
        "BitsAllocated", "AvailableTransferSyntaxUID",
    ),
}

_LEVEL_ORDER: Final = (Level.STUDY, Level.SERIES, Level.INSTANCE)


def levels_up_to(level: Level) -> tuple[Level, ...]:
    """The levels whose attributes a query at `level` may match: the level and those above it."""
    return _LEVEL_ORDER[: _LEVEL_ORDER.index(level) + 1]


def attributes_of(level: Level) -> tuple[IndexedAttribute, ...]:
    return tuple(attribute for attribute in INDEXED_ATTRIBUTES if attribute.level == level)
