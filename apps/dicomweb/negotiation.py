"""Accept-header negotiation for DICOMweb (PS3.18 §8.7), as plain functions (no Django imports).

The Accept header lists media ranges with quality values (RFC 9110 §12.5.1); PS3.18 adds the
``type`` parameter of ``multipart/related`` (the media type of every part) and ``transfer-syntax``
(§8.7.3.5.2: absent means Explicit VR Little Endian for DICOM instances and uncompressed frames,
``*`` means "as the origin server has it"). Each resource kind has a function returning what the
client accepts, best first; the view picks the first it can produce and answers 406 otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from apps.dicom.multipart import MediaType, parse_media_type, split_header_list
from apps.dicom.transcode import WEB_FORBIDDEN_TRANSFER_SYNTAXES

EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
ANY_TRANSFER_SYNTAX: Final = "*"
DICOM: Final = "application/dicom"
DICOM_JSON: Final = "application/dicom+json"
DICOM_XML: Final = "application/dicom+xml"
OCTET_STREAM: Final = "application/octet-stream"


class NotAcceptable(Exception):
    """Nothing the client accepts can be produced; the answer is 406 with this detail."""


@dataclass(frozen=True)
class AcceptedRange:
    media_type: MediaType
    quality: float
    position: int

    @property
    def essence(self) -> str:
        return self.media_type.essence

    def parameter(self, name: str) -> str | None:
        return self.media_type.parameter(name)


def parse_accept(header: str | None) -> list[AcceptedRange]:
    """Media ranges with q > 0, best first (higher quality, then as listed). No header means */*."""
    if not header or not header.strip():
        return [AcceptedRange(MediaType("*", "*"), 1.0, 0)]
    ranges: list[AcceptedRange] = []
    for position, item in enumerate(split_header_list(header)):
        try:
            media_type = parse_media_type(item)
        except ValueError:
            continue
        quality_text = media_type.parameters.pop("q", "1")
        try:
            quality = float(quality_text)
        except ValueError:
            quality = 1.0
        if quality <= 0:
            continue
        ranges.append(AcceptedRange(media_type, min(quality, 1.0), position))
    ranges.sort(key=lambda accepted: (-accepted.quality, accepted.position))
    return ranges


# In a query string a "+" decodes to a space: "application/dicom+json" arrives as "application/dicom json".
_PLUS_DECODED_AS_SPACE = re.compile(r"(?<=[A-Za-z0-9.\-]) (?=[A-Za-z0-9.\-])")


def effective_accept(header: str | None, query_values: list[str]) -> str | None:
    """The media ranges a request accepts: the `accept` query parameter when present, which
    overrides the Accept header (PS3.18 §8.3.3.1), else the header."""
    values = [value for value in query_values if value.strip()]
    if not values:
        return header
    return ", ".join(_PLUS_DECODED_AS_SPACE.sub("+", value) for value in values)


def _matches(pattern: str, media_type: str) -> bool:
    """Whether a media range (``*/*``, ``image/*``, ``image/jpeg``) covers a media type."""
    if pattern in ("*/*", "*"):
        return True
    main, _, sub = pattern.partition("/")
    wanted_main, _, wanted_sub = media_type.partition("/")
    return main == wanted_main and (sub == "*" or sub == wanted_sub)


def accepts_json(header: str | None) -> bool:
    """QIDO-RS results, metadata and STOW-RS responses are application/dicom+json (PS3.18 §8.7.4)."""
    return any(
        _matches(accepted.essence, DICOM_JSON) or accepted.essence == "application/json"
        for accepted in parse_accept(header)
    )


def accepts_dicom_xml(header: str | None) -> bool:
    """Metadata as the Native DICOM Model (PS3.18 §8.7.3.3.2): multipart/related; type="application/dicom+xml",
    one XML document a part (an XML document holds one data set)."""
    for accepted in parse_accept(header):
        if accepted.essence == DICOM_XML:
            return True
        if accepted.essence == "multipart/related" and (accepted.parameter("type") or "").strip().lower() == DICOM_XML:
            return True
    return False


# --- instances ------------------------------------------------------------------------------------------

Container = Literal["multipart", "single", "zip"]


@dataclass(frozen=True)
class InstancesRepresentation:
    """How to send DICOM instances: the container and the transfer syntax (a UID, or "*" = as stored).

    `transfer_syntax_given`: whether the request named it (False: the media type's default, which
    PS3.18 §8.7.3 lets pixel data held only in lossy form escape)."""

    container: Container
    transfer_syntax: str
    transfer_syntax_given: bool = True


def _representation(container: Container, accepted: AcceptedRange, *, default: str) -> InstancesRepresentation:
    value = accepted.parameter("transfer-syntax")
    if value and value.strip():
        return InstancesRepresentation(container, value.strip())
    return InstancesRepresentation(container, default, transfer_syntax_given=False)


def instance_representations(header: str | None, *, single_part_allowed: bool) -> list[InstancesRepresentation]:
    """What a retrieve of a study, series or instance may return (PS3.18 §8.7.3.3.1, Table 8.7.4-?).

    ``*/*`` takes the originals as stored; ``multipart/related; type="application/dicom"`` without a
    transfer-syntax asks for Explicit VR Little Endian, the default of application/dicom.
    """
    choices: list[InstancesRepresentation] = []
    for accepted in parse_accept(header):
        essence = accepted.essence
        if essence in ("*/*", "multipart/*"):
            choices.append(InstancesRepresentation("multipart", ANY_TRANSFER_SYNTAX))
        elif essence == "multipart/related":
            part_type = (accepted.parameter("type") or DICOM).strip().lower()
            if part_type in ("*/*", "application/*"):
                choices.append(_representation("multipart", accepted, default=ANY_TRANSFER_SYNTAX))
            elif part_type == DICOM:
                choices.append(_representation("multipart", accepted, default=EXPLICIT_VR_LITTLE_ENDIAN))
        elif essence == DICOM and single_part_allowed:
            choices.append(_representation("single", accepted, default=EXPLICIT_VR_LITTLE_ENDIAN))
        elif essence == "application/*" and single_part_allowed:
            choices.append(InstancesRepresentation("single", ANY_TRANSFER_SYNTAX))
        elif essence == "application/zip":
            choices.append(_representation("zip", accepted, default=ANY_TRANSFER_SYNTAX))
    return choices


def accepts_instance_bulk_data(header: str | None) -> bool:
    """An instance retrieved as its bulk data (PS3.18 Table 8.7.3-2: application/octet-stream, sent as
    multipart/related; type="application/octet-stream")."""
    for accepted in parse_accept(header):
        if accepted.essence == OCTET_STREAM:
            return True
        if accepted.essence == "multipart/related" and (accepted.parameter("type") or "").strip().lower() == OCTET_STREAM:
            return True
    return False


# --- frames ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramesRepresentation:
    """How to send frames (PS3.18 §8.7.3.3.2, §8.7.3.5).

    form "as_stored": the stored bytes; `label_as` "stored" names each part by its transfer syntax's
    media type, "octet-stream" as application/octet-stream with a transfer-syntax parameter (what
    ``type=application/octet-stream; transfer-syntax=*`` asks for, as OHIF does).
    form "uncompressed": decoded, little endian, application/octet-stream.
    form "jpeg2000": re-encoded as lossless JPEG 2000 (image/jp2).
    `stored_media_type`: with form "as_stored", the stored frames' media type must be this one.
    `transfer_syntax`: with form "as_stored", the stored transfer syntax must be this one.
    """

    form: Literal["as_stored", "uncompressed", "jpeg2000"]
    label_as: Literal["stored", "octet-stream"] = "stored"
    stored_media_type: str | None = None
    transfer_syntax: str | None = None


_FRAME_MEDIA_TYPES: Final = frozenset({
    "image/jpeg", "image/jls", "image/jp2", "image/jpx", "image/jphc", "image/dicom-rle", "image/x-dicom-rle",
    "image/x-jls", "image/jxl", "video/mpeg", "video/mp4", "video/h265",
})
_ALIASES: Final = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}


def _frames_for_type(part_type: str, accepted: AcceptedRange) -> list[FramesRepresentation]:
    syntax = accepted.parameter("transfer-syntax")
    syntax = syntax.strip() if syntax else None
    if part_type in ("*/*", "*"):
        return [FramesRepresentation("as_stored")]
    if part_type == OCTET_STREAM:
        if syntax == ANY_TRANSFER_SYNTAX:
            return [FramesRepresentation("as_stored", label_as="octet-stream")]
        if syntax in (None, EXPLICIT_VR_LITTLE_ENDIAN):
            return [FramesRepresentation("uncompressed")]
        if syntax in WEB_FORBIDDEN_TRANSFER_SYNTAXES:
            return []  # "shall not be used with Web Services" (PS3.18 §8.7.3)
        return [FramesRepresentation("as_stored", label_as="octet-stream", transfer_syntax=syntax)]
    if part_type == "image/*":
        return [FramesRepresentation("as_stored", stored_media_type="image/*")]
    canonical = _ALIASES.get(part_type, part_type)
    if canonical not in _FRAME_MEDIA_TYPES:
        return []
    choices = [FramesRepresentation(
        "as_stored", stored_media_type=canonical, transfer_syntax=None if syntax in (None, ANY_TRANSFER_SYNTAX) else syntax
    )]
    if canonical == "image/jp2" and syntax in (None, ANY_TRANSFER_SYNTAX, "1.2.840.10008.1.2.4.90"):
        choices.append(FramesRepresentation("jpeg2000"))
    return choices


def frame_representations(header: str | None) -> list[FramesRepresentation]:
    choices: list[FramesRepresentation] = []
    for accepted in parse_accept(header):
        essence = accepted.essence
        if essence in ("*/*", "multipart/*"):
            choices.append(FramesRepresentation("as_stored"))
        elif essence == "multipart/related":
            choices += _frames_for_type((accepted.parameter("type") or OCTET_STREAM).strip().lower(), accepted)
        elif essence == OCTET_STREAM or essence in _FRAME_MEDIA_TYPES or essence == "image/*":
            # A bare media type for frames: PS3.18 sends frames as multipart; treat it as the part type.
            choices += _frames_for_type(essence, accepted)
    return choices


# --- rendered, thumbnails, bulk data -----------------------------------------------------------------------

RenderedMediaType = Literal["image/jpeg", "image/png"]


def rendered_media_type(header: str | None) -> tuple[RenderedMediaType, bool]:
    """The image type for /rendered and /thumbnail, and whether the client asked for multipart framing."""
    for accepted in parse_accept(header):
        essence = accepted.essence
        multipart = essence == "multipart/related"
        candidate = (accepted.parameter("type") or "image/jpeg").strip().lower() if multipart else essence
        for option in ("image/jpeg", "image/png"):
            if _matches(candidate, option):
                return option, multipart  # type: ignore[return-value]
    raise NotAcceptable("rendered images are available as image/jpeg or image/png")


def bulk_data_container(header: str | None) -> Literal["multipart", "single"]:
    for accepted in parse_accept(header):
        essence = accepted.essence
        if essence == "multipart/related":
            part_type = (accepted.parameter("type") or OCTET_STREAM).strip().lower()
            if _matches(part_type, OCTET_STREAM) or part_type.startswith(("image/", "video/")):
                return "multipart"
        elif essence in ("*/*", "multipart/*"):
            return "multipart"
        elif _matches(essence, OCTET_STREAM):
            return "single"
    raise NotAcceptable("bulk data is available as multipart/related; type=\"application/octet-stream\"")
