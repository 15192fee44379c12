"""Read what the archive needs from a DICOM Part 10 file without decoding its pixel data (no Django imports).

One module over 500 lines on purpose: the structural walk, the parse and the extraction of the
index attributes are the three stages of one hot path, measured together (docs/benchmarks.md).

`read_instance_header` is the ingest hot path of STOW-RS and uploads:

1. a structural walk over the element headers (PS3.5 §7.1, §7.5) proves the file is complete — every
   value, item and sequence ends inside the file — and finds the pixel data element, without reading
   a single value;
2. pydicom parses the data set up to the pixel data (``stop_before_pixels``), leaving large values
   unread (``defer_size``);
3. the attributes the index needs are validated: the four identifying UIDs (PS3.5 §9.1), the File
   Meta Information (PS3.10 §7.1), the Patient ID, and pixel data for image storage SOP classes.

A refused file raises `InstanceRejected` with the PS3.18 failure reason to report for it.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from operator import itemgetter
from typing import Any, BinaryIO, Final

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from apps.dicom.index_attributes import EXTRACTED, INSTANCE_VALUES, ColumnKind
from apps.dicom.status import FailureReason, WarningReason
from apps.dicom.uids import uid_problem

#: Sequences nested deeper than this are refused (0xC000). Real objects stay far below it (an SR
#: content tree rarely passes ten levels); the parser, the JSON conversion and the structural walk
#: all descend one call per level, so an unbounded depth would exhaust the stack.
MAX_SEQUENCE_NESTING: Final = 64

#: Values at least this long are left unread by the parser and become BulkDataURIs in the metadata.
BULK_DATA_THRESHOLD: Final = 1024

REQUIRED_UID_KEYWORDS: Final = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")

PIXEL_DATA_TAGS: Final = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_ITEM: Final = 0xFFFEE000
_ITEM_DELIMITER: Final = 0xFFFEE00D
_SEQUENCE_DELIMITER: Final = 0xFFFEE0DD
_UNDEFINED_LENGTH: Final = 0xFFFFFFFF
_LAST_LEADING_UID_TAG: Final = 0x0020000E  # Series Instance UID
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 §7.1.2, Table 7.1-1).
_LONG_EXPLICIT_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

# Storage SOP classes whose IOD includes the Image Pixel module (PS3.3 §C.7.6.3): an instance of
# these without pixel data does not match its SOP class. Other classes (SR, PDF, presentation
# states, RT plans, waveforms, ...) are archived without pixel data.
IMAGE_STORAGE_SOP_CLASSES: Final = frozenset({
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray for processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3",  # Intra-oral X-Ray
    "1.2.840.10008.5.1.4.1.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound multi-frame
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
})


class InstanceRejected(Exception):
    """The file cannot be archived; `reason` is the Failure Reason (0008,1197) to report."""

    def __init__(self, reason: FailureReason, detail: str, *, sop_class_uid: str = "", sop_instance_uid: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid


@dataclass(frozen=True, slots=True)
class PixelDataElement:
    """Where the pixel data element sits in the file (PS3.5 §8): its tag, VR and value extent."""

    tag: int
    vr: str
    encapsulated: bool
    value_offset: int
    value_length: int  # for encapsulated data: up to and excluding the sequence delimiter


@dataclass(frozen=True)
class InstanceHeader:
    """The data set without pixel data, and what was checked or found while reading it."""

    dataset: Dataset
    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    pixel_data: PixelDataElement | None
    warnings: tuple[tuple[WarningReason, str], ...] = ()


# --- structural walk -----------------------------------------------------------------------------------


class _Truncated(Exception):
    pass


class _Malformed(Exception):
    pass


class _Walker:
    """Walks element headers over a buffer, skipping values; raises _Truncated or _Malformed."""

    def __init__(self, buffer: Any, size: int, *, implicit: bool, little: bool) -> None:
        self.buffer = buffer
        self.size = size
        self.implicit = implicit
        self.pair = struct.Struct("<HH" if little else ">HH")
        self.u16 = struct.Struct("<H" if little else ">H")
        self.u32 = struct.Struct("<L" if little else ">L")
        self.pixel_data: PixelDataElement | None = None

    def dataset(self, position: int, *, in_item: bool, implicit: bool, top_level: bool) -> int:
        buffer, size = self.buffer, self.size
        while position < size:
            if position + 8 > size:
                raise _Truncated("an element header runs past the end of the file")
            group, element = self.pair.unpack_from(buffer, position)
            tag = (group << 16) | element
            if group == 0xFFFE:
                if tag == _ITEM_DELIMITER and in_item:
                    return position + 8
                raise _Malformed(f"unexpected item tag ({group:04X},{element:04X}) inside a data set")
            if implicit:
                vr = b""
                length = self.u32.unpack_from(buffer, position + 4)[0]
                header = 8
            else:
                vr = bytes(buffer[position + 4:position + 6])
                if vr in _LONG_EXPLICIT_VRS:
                    if position + 12 > size:
                        raise _Truncated("an element header runs past the end of the file")
                    length = self.u32.unpack_from(buffer, position + 8)[0]
                    header = 12
                elif vr.isalpha() and vr.isupper():
                    length = self.u16.unpack_from(buffer, position + 6)[0]
                    header = 8
                else:
                    raise _Malformed(f"element ({group:04X},{element:04X}) has no valid VR")
            value_start = position + header
            if length == _UNDEFINED_LENGTH:
                if top_level and tag in PIXEL_DATA_TAGS:
                    position = self.fragments(value_start)
                    self.pixel_data = PixelDataElement(
                        tag=tag, vr=vr.decode("ascii") or "OB", encapsulated=True,
                        value_offset=value_start, value_length=position - 8 - value_start,
                    )
                else:
                    # A sequence; an explicit UN of undefined length holds implicit VR items (PS3.5 §6.2.2).
                    position = self.sequence(value_start, implicit=implicit or vr == b"UN")
                continue
            if value_start + length > size:
                raise _Truncated(f"the value of ({group:04X},{element:04X}) runs past the end of the file")
            if top_level and tag in PIXEL_DATA_TAGS:
                self.pixel_data = PixelDataElement(
                    tag=tag, vr=vr.decode("ascii") or "OW", encapsulated=False,
                    value_offset=value_start, value_length=length,
                )
            position = value_start + length
        if in_item:
            raise _Truncated("an item of undefined length is not closed before the end of the file")
        return position

    def sequence(self, position: int, *, implicit: bool) -> int:
        buffer, size = self.buffer, self.size
        while True:
            if position + 8 > size:
                raise _Truncated("a sequence of undefined length is not closed before the end of the file")
            group, element = self.pair.unpack_from(buffer, position)
            tag = (group << 16) | element
            length = self.u32.unpack_from(buffer, position + 4)[0]
            if tag == _SEQUENCE_DELIMITER:
                return position + 8
            if tag != _ITEM:
                raise _Malformed(f"expected an item in a sequence, found ({group:04X},{element:04X})")
            if length == _UNDEFINED_LENGTH:
                position = self.dataset(position + 8, in_item=True, implicit=implicit, top_level=False)
            else:
                if position + 8 + length > size:
                    raise _Truncated("a sequence item runs past the end of the file")
                position += 8 + length

    def fragments(self, position: int) -> int:
        """Encapsulated pixel data: the Basic Offset Table and fragment items (PS3.5 §A.4)."""
        buffer, size = self.buffer, self.size
        while True:
            if position + 8 > size:
                raise _Truncated("the encapsulated pixel data is not closed before the end of the file")
            group, element = self.pair.unpack_from(buffer, position)
            tag = (group << 16) | element
            length = self.u32.unpack_from(buffer, position + 4)[0]
            if tag == _SEQUENCE_DELIMITER:
                return position + 8
            if tag != _ITEM or length == _UNDEFINED_LENGTH:
                raise _Malformed("encapsulated pixel data holds something other than fragment items")
            if position + 8 + length > size:
                raise _Truncated("a pixel data fragment runs past the end of the file")
            position += 8 + length


def _end_of_file_meta(buffer: Any, size: int) -> int:
    """Offset of the first data set element after the File Meta Information (always explicit VR LE)."""
    position = 132
    while position + 8 <= size:
        group = struct.unpack_from("<H", buffer, position)[0]
        if group != 0x0002:
            return position
        vr = bytes(buffer[position + 4:position + 6])
        if vr in _LONG_EXPLICIT_VRS:
            if position + 12 > size:
                raise _Truncated("the file meta information is cut off")
            length = struct.unpack_from("<L", buffer, position + 8)[0]
            position += 12 + length
        elif vr.isalpha() and vr.isupper():
            length = struct.unpack_from("<H", buffer, position + 6)[0]
            position += 8 + length
        else:
            raise _Malformed("the file meta information is not explicit VR little endian")
        if position > size:
            raise _Truncated("the file meta information is cut off")
    return position


def _inflated_data_set(deflated: bytes) -> bytes:
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header (PS3.5 §A.5)
        return inflater.decompress(deflated) + inflater.flush()
    except zlib.error as error:
        raise _Malformed(f"the deflated data set cannot be inflated: {error}") from error


def check_structure(buffer: Any, size: int, transfer_syntax_uid: str) -> PixelDataElement | None:
    """Prove every element, item and sequence ends inside the file; return the pixel data element.

    `buffer` is anything `struct.unpack_from` reads (bytes, memoryview, mmap). A deflated data set
    (PS3.5 §A.5: compressed as a whole, Explicit VR Little Endian inside) is inflated and walked; the
    offsets it reports are then in the inflated data set, not in the file.
    """
    start = _end_of_file_meta(buffer, size)
    if transfer_syntax_uid == DeflatedExplicitVRLittleEndian:
        inflated = _inflated_data_set(bytes(buffer[start:size]))
        walker = _Walker(inflated, len(inflated), implicit=False, little=True)
        walker.dataset(0, in_item=False, implicit=False, top_level=True)
        return walker.pixel_data
    implicit = transfer_syntax_uid == ImplicitVRLittleEndian
    little = transfer_syntax_uid != ExplicitVRBigEndian
    walker = _Walker(buffer, size, implicit=implicit, little=little)
    walker.dataset(start, in_item=False, implicit=implicit, top_level=True)
    return walker.pixel_data


# --- reading -------------------------------------------------------------------------------------------

PART10_PREFIX: Final = b"\x00" * 128 + b"DICM"


def lacks_only_the_preamble(buffer: Any, size: int) -> bool:
    """Whether the bytes are a Part 10 file without its 128-byte preamble and 'DICM' prefix: they
    start with a File Meta Information element, (0002,xxxx) in explicit VR little endian. Writers
    such as pydicom 3's `dcmwrite` produce this for data sets made in memory (dicomweb-client sends
    them so); prefixing the standard preamble makes them a Part 10 file again (PS3.10 §7.1)."""
    if size < 8 or bytes(buffer[0:2]) != b"\x02\x00":
        return False
    vr = bytes(buffer[4:6])
    return vr in (b"UL", b"OB", b"UI", b"SH", b"AE")


def _text(dataset: Dataset, keyword: str) -> str:
    value = dataset.get(keyword)
    if value is None:
        return ""
    return str(value).strip().rstrip("\x00").strip()


def _leading_uids(stream: BinaryIO) -> dict[str, str]:
    """SOP Class and Instance UID of a file whose whole data set cannot be parsed, read from the
    elements before Series Instance UID (where they sit, PS3.5 §7.1: data sets are in tag order),
    so the failure can name the instance; empty values when even those cannot be read."""
    stream.seek(0)
    try:
        leading = read_partial(stream, stop_when=lambda tag, vr, length: tag > _LAST_LEADING_UID_TAG)
        return {"sop_class_uid": _text(leading, "SOPClassUID"), "sop_instance_uid": _text(leading, "SOPInstanceUID")}
    except (RecursionError, InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError, struct.error):
        return {}


def _too_deep_detail() -> str:
    return f"its sequences are nested more than {MAX_SEQUENCE_NESTING} levels deep"


def _sequence_nesting_exceeds(dataset: Dataset, limit: int) -> bool:
    """Whether sequences nest deeper than `limit`, found without recursion (a stack of items).

    Elements are fetched with `get_item` so values other than sequences stay unconverted (and
    deferred ones unread); a sequence of defined length is parsed here one level at a time, as the
    JSON conversion would."""
    pending: list[tuple[Dataset, int]] = [(dataset, 0)]
    while pending:
        current, depth = pending.pop()
        for tag in list(current.keys()):
            element = current.get_item(tag, keep_deferred=True)  # never read a deferred bulk value here
            if element is None or element.VR != "SQ":
                continue
            if depth + 1 > limit:
                return True
            try:
                items = current[tag].value
            except RecursionError:
                return True
            except (ValueError, TypeError, KeyError, struct.error):
                continue  # unreadable, not deep: left to the JSON conversion, which reports it
            pending.extend((item, depth + 1) for item in items)
    return False


def read_instance_header(
    buffer: Any, size: int, *, stream: BinaryIO | None = None, assign_missing_patient_id: bool = False
) -> InstanceHeader:
    """Validate one Part 10 file held in `buffer` and read its data set up to the pixel data.

    `buffer` is the whole file (bytes, or an mmap of a file on disk); `stream` a seekable file over
    the same bytes for the parser (made from `buffer` when not given). Values the parser defers are
    read from `stream` on first access, so keep it open while the header is in use.

    Raises InstanceRejected with 0xC000 for anything that is not a complete, readable Part 10 file
    with well-formed UIDs, and 0xA900 for a readable file that lacks what its SOP class requires.
    """
    if size < 132 or bytes(buffer[128:132]) != b"DICM":
        raise InstanceRejected(
            FailureReason.CANNOT_UNDERSTAND,
            "not a DICOM Part 10 file: no 'DICM' prefix after the 128-byte preamble (PS3.10 §7.1)",
        )
    if stream is None:
        stream = io.BytesIO(buffer) if isinstance(buffer, bytes) else io.BytesIO(bytes(buffer))
    stream.seek(0)
    try:
        dataset = pydicom.dcmread(stream, stop_before_pixels=True, defer_size=BULK_DATA_THRESHOLD)
    except RecursionError as error:
        # pydicom parses sequences of undefined length as it meets them, one call per level.
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, _too_deep_detail(), **_leading_uids(stream)) from error
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError, struct.error, NotImplementedError) as error:
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, f"the file cannot be read as DICOM: {error}") from error
    file_meta = dataset.file_meta
    transfer_syntax_uid = str(file_meta.get("TransferSyntaxUID", "") or "").strip()
    sop_class_uid = _text(dataset, "SOPClassUID")
    sop_instance_uid = _text(dataset, "SOPInstanceUID")
    identifiers = {"sop_class_uid": sop_class_uid, "sop_instance_uid": sop_instance_uid}
    if _sequence_nesting_exceeds(dataset, MAX_SEQUENCE_NESTING):
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, _too_deep_detail(), **identifiers)
    if not transfer_syntax_uid:
        raise InstanceRejected(
            FailureReason.CANNOT_UNDERSTAND, "the file meta information has no Transfer Syntax UID (0002,0010)",
            **identifiers,
        )
    problem = uid_problem(transfer_syntax_uid)
    if problem:
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, f"Transfer Syntax UID: {problem}", **identifiers)
    try:
        pixel_data = check_structure(buffer, size, transfer_syntax_uid)
    except (_Truncated, _Malformed, struct.error) as error:
        raise InstanceRejected(
            FailureReason.CANNOT_UNDERSTAND, f"the file is truncated or malformed: {error}", **identifiers
        ) from error

    values: dict[str, str] = {}
    for keyword in REQUIRED_UID_KEYWORDS:
        value = _text(dataset, keyword)
        if not value:
            raise InstanceRejected(
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, f"the required attribute {keyword} is missing",
                **identifiers,
            )
        problem = uid_problem(value)
        if problem:
            raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, f"{keyword} {value[:80]!r}: {problem}", **identifiers)
        values[keyword] = value
    media_class = str(file_meta.get("MediaStorageSOPClassUID", "") or "").strip()
    # A differing Media Storage SOP Instance UID is common in the wild and harmless: the data set's
    # SOP Instance UID identifies the instance. A differing SOP Class is refused (PS3.10 §7.1).
    if media_class and media_class != sop_class_uid:
        raise InstanceRejected(
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"Media Storage SOP Class UID {media_class} differs from the SOP Class UID {sop_class_uid}",
            **identifiers,
        )
    if sop_class_uid in IMAGE_STORAGE_SOP_CLASSES and pixel_data is None:
        raise InstanceRejected(
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"an image storage SOP class ({sop_class_uid}) without pixel data", **identifiers,
        )

    warnings: list[tuple[WarningReason, str]] = []
    patient_id = _text(dataset, "PatientID")
    # Patient ID is Type 2 (PS3.3 §C.7.1.1): it must be present, but an empty one is valid and kept
    # (unless the deployment assigns one to instances sent without a value).
    if not patient_id and (assign_missing_patient_id or "PatientID" not in dataset):
        if not assign_missing_patient_id:
            raise InstanceRejected(
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "the required attribute PatientID is missing",
                **identifiers,
            )
        patient_id = assigned_patient_id(values["StudyInstanceUID"])
        dataset.PatientID = patient_id  # the index and metadata carry it; the stored bytes stay as sent
        warnings.append((WarningReason.COERCION_OF_DATA_ELEMENTS, f"Patient ID {patient_id} was assigned"))
    return InstanceHeader(
        dataset=dataset,
        transfer_syntax_uid=transfer_syntax_uid,
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=values["StudyInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        patient_id=patient_id,
        pixel_data=pixel_data,
        warnings=tuple(warnings),
    )


def assigned_patient_id(study_instance_uid: str) -> str:
    """A Patient ID for a study that arrived without one: the same for every instance of the study."""
    import hashlib

    return "NOID-" + hashlib.sha256(study_instance_uid.encode()).hexdigest()[:16].upper()


# --- index attributes --------------------------------------------------------------------------------------


def parse_date(value: str) -> date | None:
    """A DA value (PS3.5 Table 6.2-1, YYYYMMDD; the old YYYY.MM.DD form is accepted), or None."""
    text = value.strip().replace(".", "").replace("-", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


_DT: Final = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:[+-]\d{4})?")


def datetime_key(value: str) -> str:
    """A DT value (PS3.5 Table 6.2-1, YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]][&ZZXX]) as the index keeps it,
    the first instant it names as YYYYMMDDHHMMSS.FFFFFF (text that sorts as time does); "" if it is
    not one. The offset is not applied: DT matching compares the values as written (PS3.4 §C.2.2.2.5)."""
    match = _DT.fullmatch(value.strip())
    if not match:
        return ""
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        instant = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                           min(int(second or 0), 59), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return ""
    return datetime_key_of(instant)


def datetime_key_of(instant: datetime) -> str:
    return instant.strftime("%Y%m%d%H%M%S.%f")


def parse_time(value: str) -> time | None:
    """A TM value (HH[MM[SS[.F{1-6}]]]; the old HH:MM:SS form is accepted), or None."""
    text = value.strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    hour = int(whole[0:2])
    minute = int(whole[2:4]) if len(whole) >= 4 else 0
    second = int(whole[4:6]) if len(whole) >= 6 else 0
    microsecond = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return time(hour, minute, min(second, 59), microsecond)  # a leap second 60 is kept as 59
    except ValueError:
        return None


def _integer(dataset: Dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if -(2**31) <= number < 2**31 else None


@dataclass(frozen=True, slots=True)
class IndexAttributes:
    """The attributes an instance carries into the archive index (PS3.18 §10.6.1.2, Table 10.6.1-5):
    one field per column of apps.dicom.index_attributes.INSTANCE_VALUES (a test holds them equal)."""

    # patient
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: date | None
    patient_sex: str
    # study
    study_instance_uid: str
    study_date: date | None
    study_time: time | None
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    # series
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    performed_procedure_step_start_date: date | None
    performed_procedure_step_start_time: time | None
    # instance
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int | None
    bits_allocated: int | None
    acquisition_datetime: str
    transfer_syntax_uid: str


def _json_first(document: Mapping[str, Any], tag: str) -> Any:
    entry = document.get(tag)
    values = entry.get("Value") if entry else None
    return values[0] if values else None


def _json_text(document: Mapping[str, Any], tag: str) -> str:
    value = _json_first(document, tag)
    if value is None:
        return ""
    if isinstance(value, dict):  # a person name: its component groups (PS3.18 §F.2.2)
        groups = [value.get("Alphabetic", ""), value.get("Ideographic", ""), value.get("Phonetic", "")]
        return "=".join(groups).rstrip("=")
    return str(value).strip()


def _json_integer(document: Mapping[str, Any], tag: str) -> int | None:
    value = _json_first(document, tag)
    try:
        number = int(float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and -(2**31) <= number < 2**31 else None


def text_converter(kind: ColumnKind, max_length: int) -> Callable[[str], Any]:
    """How the index keeps a non-integer attribute of `kind` from its (stripped) text."""
    if kind == ColumnKind.DATE:
        return parse_date
    if kind == ColumnKind.TIME:
        return parse_time
    if kind == ColumnKind.DATETIME:
        return datetime_key
    return itemgetter(slice(0, max_length))  # truncated to the column


# The registry's extracted attributes, precomputed: (field, keyword, tag, whether an integer, converter).
_EXTRACTORS: Final = tuple(
    (column, keyword, tag, kind == ColumnKind.INTEGER, text_converter(kind, length))
    for column, keyword, tag, kind, length in EXTRACTED
)


def index_attributes(header: InstanceHeader, document: Mapping[str, Any] | None = None) -> IndexAttributes:
    """The index attributes of an instance (the registry's extracted ones), from its DICOM JSON
    `document` when it has been made (no second conversion of the same values), else from the
    header's data set; the UIDs and Patient ID as the header validated or assigned them."""
    dataset = header.dataset
    values: dict[str, Any] = {}
    if document is None:
        for field_name, keyword, _tag, integer, convert in _EXTRACTORS:
            values[field_name] = _integer(dataset, keyword) if integer else convert(_text(dataset, keyword))
    else:
        for field_name, _keyword, tag, integer, convert in _EXTRACTORS:
            values[field_name] = _json_integer(document, tag) if integer else convert(_json_text(document, tag))
    return IndexAttributes(
        patient_id=header.patient_id[:64],
        study_instance_uid=header.study_instance_uid,
        series_instance_uid=header.series_instance_uid,
        sop_class_uid=header.sop_class_uid,
        sop_instance_uid=header.sop_instance_uid,
        transfer_syntax_uid=header.transfer_syntax_uid,
        **values,
    )


_KEYWORD_OF_FIELD: Final = {attribute.column: attribute.source_keyword for attribute in INSTANCE_VALUES}


def attribute_with_nul(attributes: IndexAttributes) -> str | None:
    """The keyword of an indexed text that holds a NUL character, if any: no DICOM text VR may
    hold one (PS3.5 §6.2; only UIDs are NUL-padded, and `_text` strips that padding), and the
    index cannot store one."""
    for name, keyword in _KEYWORD_OF_FIELD.items():
        value = getattr(attributes, name)
        if isinstance(value, str) and "\x00" in value:
            return keyword
    return None
