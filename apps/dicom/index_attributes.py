"""The index-attribute registry: which DICOM attributes the archive index keeps, and how (no Django imports).

One table — level, keyword, tag, VR, kind, column, maximum length, where the value comes from,
which instance's value a study or series keeps, how QIDO-RS matches it — from which everything
else derives (see docs/architecture.md, "The index-attribute registry"):

- extraction from an instance (apps.dicom.headers.index_attributes) and from a flat mapping
  (apps.archive.services.bulk);
- the column lists of the batch insert SQL (apps.archive.services.indexing);
- QIDO-RS matching, key to column and key kind to match kinds (apps.archive.selectors, PS3.18 §10.6.1.2);
- the DICOM JSON of QIDO-RS answers: VR, value form, default return keys (apps.dicomweb.serializers,
  PS3.18 Tables 10.6.3-3, -4, -5).

The Django models keep their explicit field declarations (migrations are made from them);
tests/archive/test_index_attribute_registry.py holds them equal to this table. Everything read per
row is precomputed here, at import, as tuples.
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
    TEXT = "text"  # short strings and code strings, truncated to max_length
    UID = "uid"
    PERSON_NAME = "person_name"  # matched on `search_column` (normalised) and `keys_column` (phonetic)
    DATE = "date"
    TIME = "time"
    DATETIME = "datetime"  # text YYYYMMDDHHMMSS.FFFFFF (apps.dicom.headers.datetime_key): orders as time does
    INTEGER = "integer"
    CODE_ARRAY = "code_array"  # ModalitiesInStudy: matches when any value matches


class MatchKind(StrEnum):
    """What one QIDO-RS matching key asks for (PS3.4 §C.2.2.2), as apps.dicom.matching parses it."""

    UNIVERSAL = "universal"
    SINGLE = "single"
    LIST = "list"  # a UID list (PS3.4 §C.2.2.2.2) or a list of values
    WILDCARD = "wildcard"
    RANGE = "range"
    FUZZY = "fuzzy"


class Source(StrEnum):
    DATA_SET = "data_set"  # read from each instance's data set (or the DICOM JSON made from it)
    HEADER = "header"  # the InstanceHeader field of the column's name: UIDs as validated, Patient ID as assigned
    COMPUTED = "computed"  # counters and ModalitiesInStudy, maintained by the indexer


class UpdatePolicy(StrEnum):
    """Which value a study or series row keeps when its later instances carry another one."""

    FIRST_WINS = "first-wins"  # the value of the instance that created the row
    FILL_EMPTY = "fill-empty"  # first wins, but a later instance fills the value while it is empty
    CONFLICT_FLAGGED = "conflict-flagged"  # first wins; a contradicting instance is refused and flagged
    COMPUTED = "computed"  # added to by every instance (counters, ModalitiesInStudy)
    PER_INSTANCE = "per-instance"  # instance level: each instance is its own row


# How QIDO-RS matches each kind of column (besides universal matching, which every key allows);
# a key of another match kind is answered with a warning that it was not matched (PS3.18 §10.6.3.1).
MATCHING_OF_KIND: Final[dict[ColumnKind, frozenset[MatchKind]]] = {
    ColumnKind.TEXT: frozenset({MatchKind.SINGLE, MatchKind.LIST, MatchKind.WILDCARD}),
    ColumnKind.UID: frozenset({MatchKind.SINGLE, MatchKind.LIST}),
    ColumnKind.PERSON_NAME: frozenset({MatchKind.SINGLE, MatchKind.LIST, MatchKind.WILDCARD, MatchKind.FUZZY}),
    ColumnKind.DATE: frozenset({MatchKind.RANGE}),  # a single date is the range from it to itself
    ColumnKind.TIME: frozenset({MatchKind.RANGE}),
    ColumnKind.DATETIME: frozenset({MatchKind.RANGE}),
    ColumnKind.INTEGER: frozenset({MatchKind.SINGLE, MatchKind.LIST}),
    ColumnKind.CODE_ARRAY: frozenset({MatchKind.SINGLE, MatchKind.LIST}),
}


@dataclass(frozen=True, slots=True)
class IndexedAttribute:
    keyword: str
    tag: str  # 8 hex digits, as in the DICOM JSON model
    vr: str
    level: Level
    column: str  # the column on that level's model
    kind: ColumnKind
    max_length: int  # of the column, for text kinds (values are truncated to it); 0 otherwise
    policy: UpdatePolicy
    source: Source = Source.DATA_SET
    default_return: bool = True  # in every QIDO-RS answer at its level, without includefield
    qido: bool = True  # a QIDO-RS matching key
    patient_record: bool = False  # also kept on the Patient row (patient attributes are copied onto Study)
    search_column: str = ""  # person names: the normalised copy matched by wild cards and single values
    keys_column: str = ""  # person names: phonetic keys for fuzzy matching (study patient name only)
    read_as: str = ""  # the keyword the value is read under, when not its own (file meta Transfer Syntax UID)

    @property
    def source_keyword(self) -> str:
        return self.read_as or self.keyword

    @property
    def matching(self) -> frozenset[MatchKind]:
        return MATCHING_OF_KIND[self.kind] if self.qido else frozenset()


_S, _SE, _I = Level.STUDY, Level.SERIES, Level.INSTANCE
_K, _P, _H, _C = ColumnKind, UpdatePolicy, Source.HEADER, Source.COMPUTED
_A = IndexedAttribute

INDEXED_ATTRIBUTES: Final[tuple[IndexedAttribute, ...]] = (
    # study level (patient attributes are copied onto the study, so a study query never joins)
    _A("StudyDate", "00080020", "DA", _S, "study_date", _K.DATE, 0, _P.FIRST_WINS),
    _A("StudyTime", "00080030", "TM", _S, "study_time", _K.TIME, 0, _P.FIRST_WINS),
    _A("AccessionNumber", "00080050", "SH", _S, "accession_number", _K.TEXT, 64, _P.FILL_EMPTY),
    _A("ModalitiesInStudy", "00080061", "CS", _S, "modalities_in_study", _K.CODE_ARRAY, 16, _P.COMPUTED, _C),
    _A("ReferringPhysicianName", "00080090", "PN", _S, "referring_physician_name", _K.PERSON_NAME, 330,
       _P.FIRST_WINS, search_column="referring_physician_name_search"),
    _A("StudyDescription", "00081030", "LO", _S, "study_description", _K.TEXT, 256, _P.FILL_EMPTY),
    _A("PatientName", "00100010", "PN", _S, "patient_name", _K.PERSON_NAME, 330, _P.CONFLICT_FLAGGED,
       patient_record=True, search_column="patient_name_search", keys_column="patient_name_keys"),
    _A("PatientID", "00100020", "LO", _S, "patient_id", _K.TEXT, 64, _P.CONFLICT_FLAGGED, _H, patient_record=True),
    _A("IssuerOfPatientID", "00100021", "LO", _S, "issuer_of_patient_id", _K.TEXT, 64, _P.CONFLICT_FLAGGED,
       default_return=False, patient_record=True),
    _A("PatientBirthDate", "00100030", "DA", _S, "patient_birth_date", _K.DATE, 0, _P.CONFLICT_FLAGGED,
       patient_record=True),
    _A("PatientSex", "00100040", "CS", _S, "patient_sex", _K.TEXT, 16, _P.FIRST_WINS, patient_record=True),
    _A("StudyInstanceUID", "0020000D", "UI", _S, "study_instance_uid", _K.UID, 64, _P.FIRST_WINS, _H),
    _A("StudyID", "00200010", "SH", _S, "study_id", _K.TEXT, 64, _P.FIRST_WINS),
    _A("NumberOfStudyRelatedSeries", "00201206", "IS", _S, "number_of_series", _K.INTEGER, 0, _P.COMPUTED, _C),
    _A("NumberOfStudyRelatedInstances", "00201208", "IS", _S, "number_of_instances", _K.INTEGER, 0, _P.COMPUTED,
       _C),
    # series level
    _A("Modality", "00080060", "CS", _SE, "modality", _K.TEXT, 16, _P.FIRST_WINS),
    _A("SeriesDescription", "0008103E", "LO", _SE, "series_description", _K.TEXT, 256, _P.FILL_EMPTY),
    _A("BodyPartExamined", "00180015", "CS", _SE, "body_part_examined", _K.TEXT, 64, _P.FIRST_WINS,
       default_return=False),
    _A("SeriesInstanceUID", "0020000E", "UI", _SE, "series_instance_uid", _K.UID, 64, _P.FIRST_WINS, _H),
    _A("SeriesNumber", "00200011", "IS", _SE, "series_number", _K.INTEGER, 0, _P.FIRST_WINS),
    _A("PerformedProcedureStepStartDate", "00400244", "DA", _SE, "performed_procedure_step_start_date", _K.DATE,
       0, _P.FIRST_WINS),
    _A("PerformedProcedureStepStartTime", "00400245", "TM", _SE, "performed_procedure_step_start_time", _K.TIME,
       0, _P.FIRST_WINS),
    _A("NumberOfSeriesRelatedInstances", "00201209", "IS", _SE, "number_of_instances", _K.INTEGER, 0,
       _P.COMPUTED, _C),
    # instance level
    _A("SOPClassUID", "00080016", "UI", _I, "sop_class_uid", _K.UID, 64, _P.PER_INSTANCE, _H),
    _A("SOPInstanceUID", "00080018", "UI", _I, "sop_instance_uid", _K.UID, 64, _P.PER_INSTANCE, _H),
    _A("InstanceNumber", "00200013", "IS", _I, "instance_number", _K.INTEGER, 0, _P.PER_INSTANCE),
    _A("Rows", "00280010", "US", _I, "rows", _K.INTEGER, 0, _P.PER_INSTANCE),
    _A("Columns", "00280011", "US", _I, "columns", _K.INTEGER, 0, _P.PER_INSTANCE),
    _A("NumberOfFrames", "00280008", "IS", _I, "number_of_frames", _K.INTEGER, 0, _P.PER_INSTANCE),
    _A("BitsAllocated", "00280100", "US", _I, "bits_allocated", _K.INTEGER, 0, _P.PER_INSTANCE),
    _A("AcquisitionDateTime", "0008002A", "DT", _I, "acquisition_datetime", _K.DATETIME, 21, _P.PER_INSTANCE,
       default_return=False),
    _A("AvailableTransferSyntaxUID", "00083002", "UI", _I, "transfer_syntax_uid", _K.UID, 64, _P.PER_INSTANCE, _H,
       read_as="TransferSyntaxUID"),
)

_LEVEL_ORDER: Final = (Level.STUDY, Level.SERIES, Level.INSTANCE)

BY_KEYWORD: Final[dict[str, IndexedAttribute]] = {attribute.keyword: attribute for attribute in INDEXED_ATTRIBUTES}

ATTRIBUTES_OF_LEVEL: Final[dict[Level, tuple[IndexedAttribute, ...]]] = {
    level: tuple(attribute for attribute in INDEXED_ATTRIBUTES if attribute.level == level) for level in _LEVEL_ORDER
}

# What each instance carries into the index (apps.dicom.headers.IndexAttributes has one field per
# column here): everything but the values the indexer computes.
INSTANCE_VALUES: Final[tuple[IndexedAttribute, ...]] = tuple(
    attribute for attribute in INDEXED_ATTRIBUTES if attribute.source != Source.COMPUTED
)

# Read from the data set: (column, keyword, tag, kind, max_length), in the order of the table.
EXTRACTED: Final[tuple[tuple[str, str, str, ColumnKind, int], ...]] = tuple(
    (attribute.column, attribute.keyword, attribute.tag, attribute.kind, attribute.max_length)
    for attribute in INDEXED_ATTRIBUTES if attribute.source == Source.DATA_SET
)

# Each level's columns written from its first instance (the batch insert), in the order of the table.
STORED_OF_LEVEL: Final[dict[Level, tuple[IndexedAttribute, ...]]] = {
    level: tuple(attribute for attribute in ATTRIBUTES_OF_LEVEL[level] if attribute.source != Source.COMPUTED)
    for level in _LEVEL_ORDER
}

PATIENT_RECORD: Final[tuple[IndexedAttribute, ...]] = tuple(
    attribute for attribute in INDEXED_ATTRIBUTES if attribute.patient_record
)

# What a QIDO-RS answer holds without includefield (PS3.18 Tables 10.6.3-3, -4, -5), plus the
# descriptions viewers list studies and series by.
DEFAULT_RETURN_KEYWORDS: Final[dict[Level, tuple[str, ...]]] = {
    level: tuple(attribute.keyword for attribute in ATTRIBUTES_OF_LEVEL[level] if attribute.default_return)
    for level in _LEVEL_ORDER
}


def levels_up_to(level: Level) -> tuple[Level, ...]:
    """The levels whose attributes a query at `level` may match: the level and those above it."""
    return _LEVEL_ORDER[: _LEVEL_ORDER.index(level) + 1]


def attributes_of(level: Level) -> tuple[IndexedAttribute, ...]:
    return ATTRIBUTES_OF_LEVEL[level]
