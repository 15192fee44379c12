"""WADO-URI requests (PS3.18 §9): the query parameters read and checked, as plain Python.

``GET …/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…`` retrieves one instance, as
DICOM (``contentType=application/dicom``, §9.4) or rendered (``image/jpeg``, ``image/png``, §9.5).
What is not supported is said, never silently dropped where the standard asks for an error:
``anonymize`` (§9.4) is refused; other parameters this server does not implement (``region``,
``annotation``, ``presentationUID``, ``charset``) are ignored as PS3.18 §8.3 asks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from apps.dicom.rendering import RenderedMediaType, RenderingParameterError, RenderOptions

DICOM: Final = "application/dicom"
RENDERED_TYPES: Final[tuple[RenderedMediaType, ...]] = ("image/jpeg", "image/png")
SUPPORTED_CONTENT_TYPES: Final = (DICOM, *RENDERED_TYPES)
_UID: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SINGLE_VALUED: Final = (
    "requestType", "studyUID", "seriesUID", "objectUID", "transferSyntax", "frameNumber", "rows", "columns",
    "windowCenter", "windowWidth", "imageQuality", "anonymize",
)


class WadoUriError(ValueError):
    """A request this server answers with an error: `code`, the detail, and the HTTP status."""

    def __init__(self, code: str, detail: str, status: int) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status


def _invalid(detail: str) -> WadoUriError:
    return WadoUriError("invalid_parameter", detail, 400)


@dataclass(frozen=True)
class WadoUriRequest:
    """A checked WADO-URI request. `content_types`: those asked for, best first (empty: the default)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    content_types: tuple[str, ...] = ()
    transfer_syntax: str | None = None
    frame_number: int | None = None
    # The rendering parameters in their WADO-RS form (PS3.18 §8.3.5): window, viewport, quality.
    rendering: Mapping[str, str] = field(default_factory=dict)


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [value for value in query.get(name, []) if value != ""]
    if len(values) > 1:
        raise _invalid(f"{name} takes one value, {len(values)} were given")
    return values[0].strip() if values else None


def _uid(query: Mapping[str, Sequence[str]], name: str) -> str:
    value = _one(query, name)
    if value is None:
        raise WadoUriError("missing_parameter", f"{name} is required (PS3.18 §9)", 400)
    if len(value) > 64 or not _UID.match(value):
        raise _invalid(f"{name} {value[:70]!r} is not a UID (PS3.5 §9.1)")
    return value


def _positive(query: Mapping[str, Sequence[str]], name: str) -> int | None:
    value = _one(query, name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise _invalid(f"{name} must be a positive integer, not {value[:20]!r}")
    return int(value)


def _content_types(text: str | None) -> tuple[str, ...]:
    """``contentType`` is a list of media types, each with an optional quality (PS3.18 §9): best first."""
    if not text:
        return ()
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(text.split(",")):
        essence, *parameters = [part.strip() for part in item.split(";")]
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    raise _invalid(f"contentType quality {value!r} is not a number") from None
        if essence and quality > 0:
            ranked.append((-quality, position, essence.lower()))
    return tuple(essence for _, _, essence in sorted(ranked))


def parse_wado_uri(query: Mapping[str, Sequence[str]]) -> WadoUriRequest:
    """Read and check a WADO-URI query string (PS3.18 §9.4, §9.5). Raises WadoUriError."""
    request_type = _one(query, "requestType")
    if request_type != "WADO":
        raise WadoUriError("missing_parameter" if request_type is None else "invalid_parameter",
                           "requestType must be WADO (PS3.18 §9)", 400)
    if (_one(query, "anonymize") or "").lower() == "yes":
        raise WadoUriError("anonymize_not_supported", "This server does not de-identify instances on retrieval "
                           "(anonymize=yes, PS3.18 §9.4).", 400)
    for name in _SINGLE_VALUED:
        _one(query, name)
    transfer_syntax = _one(query, "transferSyntax")
    if transfer_syntax is not None and (len(transfer_syntax) > 64 or not _UID.match(transfer_syntax)):
        raise _invalid(f"transferSyntax {transfer_syntax[:70]!r} is not a UID (PS3.18 §9.4.2.4)")
    rendering: dict[str, str] = {}
    center, width = _one(query, "windowCenter"), _one(query, "windowWidth")
    if (center is None) != (width is None):
        raise _invalid("windowCenter and windowWidth go together (PS3.18 §9.5)")
    if center is not None:
        rendering["window"] = f"{center},{width}"
    rows, columns = _positive(query, "rows"), _positive(query, "columns")
    if rows or columns:
        # One bound given: the image fits a square of that size, so that bound holds.
        rendering["viewport"] = f"{columns or rows},{rows or columns}"
    quality = _one(query, "imageQuality")
    if quality is not None:
        rendering["quality"] = quality
    return WadoUriRequest(
        study_instance_uid=_uid(query, "studyUID"), series_instance_uid=_uid(query, "seriesUID"),
        sop_instance_uid=_uid(query, "objectUID"), content_types=_content_types(_one(query, "contentType")),
        transfer_syntax=transfer_syntax, frame_number=_positive(query, "frameNumber"), rendering=rendering,
    )


def response_content_type(request: WadoUriRequest, *, has_pixels: bool, number_of_frames: int) -> str:
    """The media type of the answer (PS3.18 §9): the first asked for that is supported; without
    contentType, image/jpeg for a single-frame image and application/dicom for anything else.
    Raises WadoUriError (406) when nothing asked for is supported, (400) for transferSyntax with a
    rendered type."""
    if not request.content_types:
        chosen = "image/jpeg" if has_pixels and number_of_frames == 1 else DICOM
    else:
        supported = [item for item in request.content_types if item in SUPPORTED_CONTENT_TYPES or item == "*/*"]
        if not supported:
            raise WadoUriError("not_acceptable", f"contentType {', '.join(request.content_types)} is not supported: "
                               f"use {', '.join(SUPPORTED_CONTENT_TYPES)}.", 406)
        chosen = supported[0] if supported[0] != "*/*" else ("image/jpeg" if has_pixels else DICOM)
    if chosen != DICOM and not has_pixels:
        raise WadoUriError("not_acceptable", "The instance has no pixel data to render; ask for application/dicom.",
                           406)
    if chosen != DICOM and request.transfer_syntax is not None:
        raise _invalid("transferSyntax is only for contentType=application/dicom (PS3.18 §9.4.2.4)")
    return chosen


def render_options(request: WadoUriRequest, media_type: RenderedMediaType, *, number_of_frames: int) -> RenderOptions:
    """Rendering options for the instance (PS3.18 §9.5.2): its first frame unless frameNumber names
    one of a multi-frame instance's frames (400 otherwise, §9.5.2)."""
    frame_index = 0
    if request.frame_number is not None:
        if number_of_frames < 2 or request.frame_number > number_of_frames:
            raise _invalid(f"frameNumber {request.frame_number} is not a frame of this instance "
                           f"({number_of_frames} frame(s); PS3.18 §9.5.2)")
        frame_index = request.frame_number - 1
    try:
        return RenderOptions.from_query_parameters(request.rendering, media_type=media_type, frame_index=frame_index)
    except RenderingParameterError as error:
        raise _invalid(str(error)) from error
