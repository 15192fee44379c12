"""Consumer-quality rendering of one frame to JPEG or PNG (no Django imports).

One module over 500 lines on purpose: the steps of the PS3.4 §N.2.1 pipeline call each other and
share the frame's attributes; split, each part would reach into the others' private helpers.

Serves WADO-RS ``/rendered`` (PS3.18 §8.3.5 rendered media types, §10.4.1.1.3 query parameters) and
``/thumbnail`` (PS3.18 §10.4.1.1.4 / §9.5). The grayscale pipeline is the one of PS3.4 §N.2.1:

    stored values -> Modality LUT (rescale, PS3.3 §C.11.1) -> VOI LUT (window, PS3.3 §C.11.2)
    -> Presentation LUT (MONOCHROME1 and INVERSE are inverted, PS3.3 §C.7.6.3.1.2, §C.11.6) -> 8 bits

Colour images are shown as RGB: YBR data is converted while decoding (PS3.3 §C.7.6.3.1.2), PALETTE
COLOR through its lookup tables (PS3.3 §C.7.9). Everything is vectorised with numpy in float32 so a
512 x 512 CT slice renders in a few milliseconds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, cast

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, convert_color_space

from apps.dicom.transcode import (
    DecodedFrame,
    TranscodeNotPossible,
    decode_frame,
    number_of_frames,
    pixel_data_keyword,
)

RenderedMediaType = Literal["image/jpeg", "image/png"]
RENDERED_MEDIA_TYPES: Final[tuple[RenderedMediaType, ...]] = ("image/jpeg", "image/png")
DEFAULT_JPEG_QUALITY: Final = 90
DEFAULT_THUMBNAIL_SIZE: Final = 128
# A bound on what one request may make the server allocate (4096 x 4096 RGB is 48 MiB).
MAX_VIEWPORT_SIDE: Final = 4096
# zlib level 1 is several times faster than the default 6 and still lossless.
PNG_COMPRESS_LEVEL: Final = 1

_GRAYSCALE_PHOTOMETRICS: Final = frozenset({"MONOCHROME1", "MONOCHROME2"})
_YBR_PHOTOMETRICS: Final = frozenset({"YBR_FULL", "YBR_FULL_422"})



class RenderingParameterError(ValueError):
    """A rendering query parameter (window, viewport, quality, ...) is malformed or out of range."""


class RenderingNotPossible(Exception):
    """The object cannot be rendered: no pixel data (e.g. SR), or pixel data that cannot be decoded here."""


class VoiLutFunction(StrEnum):
    """VOI LUT Function (0028,1056), PS3.3 §C.11.2.1.3."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"


@dataclass(frozen=True, slots=True)
class SourceRegion:
    """The ``sx,sy,sw,sh`` part of the viewport parameter (PS3.18 §10.4.1.1.3): a region of the frame.

    ``x``/``y`` are the top left pixel (0-based). A negative width or height takes the region to the
    left of / above that point and flips it; ``None`` extends the region to the edge of the frame.
    """

    x: int = 0
    y: int = 0
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Viewport:
    """A parsed ``viewport`` parameter: the largest output size, and optionally a region to crop first."""

    width: int
    height: int
    source_region: SourceRegion | None = None


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render one frame.

    window:         (center, width) that overrides the dataset's own VOI; None uses the dataset's.
    window_function: VOI LUT function for ``window`` (LINEAR when None).
    viewport:       (max width, max height): the frame is scaled to fit, keeping its aspect ratio.
    source_region:  region of the frame to crop before scaling.
    media_type:     "image/jpeg" or "image/png".
    quality:        JPEG quality, 1-100.
    frame_index:    0-based frame of a multi-frame object.
    """

    window: tuple[float, float] | None = None
    window_function: VoiLutFunction | None = None
    viewport: tuple[int, int] | None = None
    source_region: SourceRegion | None = None
    media_type: RenderedMediaType = "image/jpeg"
    quality: int = DEFAULT_JPEG_QUALITY
    frame_index: int = 0

    def __post_init__(self) -> None:
        if self.media_type not in RENDERED_MEDIA_TYPES:
            raise RenderingParameterError(
                f"media type {self.media_type!r} cannot be rendered; use one of {', '.join(RENDERED_MEDIA_TYPES)}"
            )
        if (
            isinstance(self.quality, bool)
            or not isinstance(self.quality, int)
            or not 1 <= self.quality <= 100
        ):
            raise RenderingParameterError(f"quality must be an integer from 1 to 100, not {self.quality!r}")
        if (
            isinstance(self.frame_index, bool)
            or not isinstance(self.frame_index, int)
            or self.frame_index < 0
        ):
            raise RenderingParameterError(f"frame index must be an integer >= 0, not {self.frame_index!r}")
        if self.window is not None:
            _check_window(self.window[0], self.window[1], self.window_function or VoiLutFunction.LINEAR)
        if self.viewport is not None:
            _check_viewport_size(*self.viewport)

    @classmethod
    def from_query_parameters(
        cls,
        parameters: Mapping[str, str],
        *,
        media_type: RenderedMediaType = "image/jpeg",
        frame_index: int = 0,
    ) -> RenderOptions:
        """Options from the PS3.18 §10.4.1.1.3 query parameters ``window``, ``viewport`` and ``quality``.

        Other parameters (``annotation``, ``charset``, ``iccprofile``, ...) are ignored here.
        """
        window: tuple[float, float] | None = None
        window_function: VoiLutFunction | None = None
        if parameters.get("window"):
            center, width, window_function = parse_window_parameter(parameters["window"])
            window = (center, width)
        viewport: Viewport | None = None
        if parameters.get("viewport"):
            viewport = parse_viewport_parameter(parameters["viewport"])
        quality = DEFAULT_JPEG_QUALITY
        if parameters.get("quality"):
            quality = parse_quality_parameter(parameters["quality"])
        return cls(
            window=window,
            window_function=window_function,
            viewport=(viewport.width, viewport.height) if viewport else None,
            source_region=viewport.source_region if viewport else None,
            media_type=media_type,
            quality=quality,
            frame_index=frame_index,
        )


# --- query parameters ----------------------------------------------------------------------------


def parse_window_parameter(text: str) -> tuple[float, float, VoiLutFunction]:
    """Parse ``window=center,width[,function]`` (PS3.18 §10.4.1.1.3.4).

    The function is ``linear``, ``linear-exact`` or ``sigmoid`` (PS3.3 §C.11.2.1.3; the attribute
    spellings LINEAR_EXACT etc. are accepted too) and defaults to linear.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise RenderingParameterError(f"window must be 'center,width[,function]', got {text!r}")
    center = _parse_finite_number(parts[0], "window center")
    width = _parse_finite_number(parts[1], "window width")
    function = VoiLutFunction.LINEAR
    if len(parts) == 3 and parts[2]:
        name = parts[2].upper().replace("-", "_")
        try:
            function = VoiLutFunction(name)
        except ValueError:
            raise RenderingParameterError(
                f"window function must be linear, linear-exact or sigmoid, not {parts[2]!r}"
            ) from None
    _check_window(center, width, function)
    return center, width, function


def parse_viewport_parameter(text: str) -> Viewport:
    """Parse ``viewport=vw,vh`` or ``viewport=vw,vh,sx,sy,sw,sh`` (PS3.18 §10.4.1.1.3.3).

    ``vw``/``vh`` bound the output size (aspect ratio kept); ``sx,sy,sw,sh`` select the source region
    to crop before scaling. Any of the four region values may be left empty for its default.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 6):
        raise RenderingParameterError(f"viewport must be 'vw,vh' or 'vw,vh,sx,sy,sw,sh', got {text!r}")
    width = _parse_integer(parts[0], "viewport width")
    height = _parse_integer(parts[1], "viewport height")
    _check_viewport_size(width, height)
    if len(parts) == 2:
        return Viewport(width=width, height=height)
    x = _parse_integer(parts[2], "viewport sx") if parts[2] else 0
    y = _parse_integer(parts[3], "viewport sy") if parts[3] else 0
    region_width = _parse_integer(parts[4], "viewport sw") if parts[4] else None
    region_height = _parse_integer(parts[5], "viewport sh") if parts[5] else None
    if x < 0 or y < 0:
        raise RenderingParameterError(f"viewport sx and sy must be >= 0, got {x},{y}")
    if region_width == 0 or region_height == 0:
        raise RenderingParameterError("viewport sw and sh must not be 0")
    return Viewport(
        width=width,
        height=height,
        source_region=SourceRegion(x=x, y=y, width=region_width, height=region_height),
    )


def parse_quality_parameter(text: str) -> int:
    """Parse ``quality=q``, an integer from 1 to 100 (PS3.18 §10.4.1.1.3.2)."""
    quality = _parse_integer(text.strip(), "quality")
    if not 1 <= quality <= 100:
        raise RenderingParameterError(f"quality must be from 1 to 100, got {quality}")
    return quality


def _parse_finite_number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RenderingParameterError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise RenderingParameterError(f"{name} must be a finite number, got {text!r}")
    return value


def _parse_integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RenderingParameterError(f"{name} must be an integer, got {text!r}") from None


def _check_window(center: float, width: float, function: VoiLutFunction) -> None:
    if not (math.isfinite(center) and math.isfinite(width)):
        raise RenderingParameterError("window center and width must be finite numbers")
    # PS3.3 §C.11.2.1.2.1: width >= 1 for LINEAR; §C.11.2.1.3.2 / .1: width > 0 otherwise.
    if function is VoiLutFunction.LINEAR and width < 1:
        raise RenderingParameterError(f"window width must be >= 1 for the linear function, got {width:g}")
    if width <= 0:
        raise RenderingParameterError(f"window width must be > 0, got {width:g}")


def _check_viewport_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_VIEWPORT_SIDE and 1 <= height <= MAX_VIEWPORT_SIDE):
        raise RenderingParameterError(
            f"viewport width and height must be from 1 to {MAX_VIEWPORT_SIDE}, got {width},{height}"
        )


# --- rendering -----------------------------------------------------------------------------------


def render_frame(dataset: Dataset, options: RenderOptions) -> bytes:
    """One frame as JPEG or PNG bytes (PS3.18 §8.3.5 rendered media types)."""
    return _encode_image(_render_image(dataset, options), options.media_type, options.quality)


def render_frame_array(dataset: Dataset, options: RenderOptions) -> np.ndarray:
    """One frame as displayed: uint8, shape (rows, columns) for grayscale or (rows, columns, 3) for RGB.

    The pixels ``render_frame`` would encode; films compose these into sheets.
    """
    return np.asarray(_render_image(dataset, options))


def render_thumbnail(
    dataset: Dataset,
    size: int = DEFAULT_THUMBNAIL_SIZE,
    media_type: RenderedMediaType = "image/jpeg",
    quality: int = 85,
) -> bytes:
    """A thumbnail fitting ``size`` x ``size`` (PS3.18 §10.4.1.1.4); the middle frame of a multi-frame object."""
    if pixel_data_keyword(dataset) is None:
        raise RenderingNotPossible(_no_pixel_data_message(dataset))
    options = RenderOptions(
        viewport=(size, size),
        media_type=media_type,
        quality=quality,
        frame_index=number_of_frames(dataset) // 2,
    )
    return render_frame(dataset, options)


def _render_image(dataset: Dataset, options: RenderOptions) -> Image.Image:
    decoded = _decode_for_rendering(dataset, options.frame_index)
    photometric = decoded.photometric_interpretation
    if photometric in _GRAYSCALE_PHOTOMETRICS and decoded.samples_per_pixel == 1:
        display = _grayscale_to_display(dataset, decoded, options)
    elif photometric == "PALETTE COLOR":
        display = _palette_to_display(dataset, decoded.pixels)
    elif decoded.samples_per_pixel == 3 and (photometric == "RGB" or photometric in _YBR_PHOTOMETRICS):
        rgb = decoded.pixels
        if photometric in _YBR_PHOTOMETRICS:
            rgb = convert_color_space(rgb, "YBR_FULL", "RGB")
        display = _to_eight_bits(rgb, decoded.bits_stored)
    else:
        raise RenderingNotPossible(f"photometric interpretation {photometric!r} cannot be rendered")
    display = _crop(display, options.source_region)
    image = Image.fromarray(display)
    return _fit_to_viewport(image, options.viewport)


def _decode_for_rendering(dataset: Dataset, frame_index: int) -> DecodedFrame:
    if pixel_data_keyword(dataset) is None:
        raise RenderingNotPossible(_no_pixel_data_message(dataset))
    frame_count = number_of_frames(dataset)
    if frame_index >= frame_count:
        raise RenderingParameterError(
            f"frame {frame_index + 1} does not exist: the instance has {frame_count} frame(s)"
        )
    try:
        return decode_frame(dataset, frame_index + 1)
    except TranscodeNotPossible as error:
        raise RenderingNotPossible(str(error)) from error


def _no_pixel_data_message(dataset: Dataset) -> str:
    sop_class = dataset.get("SOPClassUID")
    sop_class_name = str(getattr(sop_class, "name", "")) if sop_class is not None else ""
    described = f" ({sop_class_name})" if sop_class_name else ""
    return f"the object{described} has no pixel data to render"


def _grayscale_to_display(dataset: Dataset, decoded: DecodedFrame, options: RenderOptions) -> np.ndarray:
    """Modality LUT, VOI LUT and presentation inversion to 8 bits (PS3.4 §N.2.1.1)."""
    stored = decoded.pixels
    invert = _is_inverted(dataset, decoded.photometric_interpretation)
    modality_lut = _first_item(dataset, "ModalityLUTSequence")
    if modality_lut is not None:
        values: np.ndarray = _apply_lookup_table(stored, modality_lut, dataset).astype(np.float32)
        slope, intercept = 1.0, 0.0
    else:
        values = stored
        slope, intercept = _rescale_for_frame(dataset, options.frame_index)

    if options.window is not None:
        center, width = options.window
        return _apply_window(
            values, slope, intercept, center, width, options.window_function or VoiLutFunction.LINEAR, invert
        )
    dataset_window = _window_for_frame(dataset, options.frame_index)
    if dataset_window is not None:
        center, width, function = dataset_window
        return _apply_window(values, slope, intercept, center, width, function, invert)
    voi_lut = _first_item(dataset, "VOILUTSequence")
    if voi_lut is not None:
        modality_values = (
            values if (slope, intercept) == (1.0, 0.0) else values * np.float32(slope) + intercept
        )
        return _apply_voi_lookup_table(modality_values, voi_lut, dataset, invert)
    return _apply_full_range_window(values, slope, intercept, invert)


def _apply_window(
    values: np.ndarray,
    slope: float,
    intercept: float,
    center: float,
    width: float,
    function: VoiLutFunction,
    invert: bool,
) -> np.ndarray:
    """The VOI LUT functions of PS3.3 §C.11.2.1.2.1 (LINEAR), §C.11.2.1.3.2 (LINEAR_EXACT) and
    §C.11.2.1.3.1 (SIGMOID), with y_min = 0 and y_max = 255, fused with the rescale x = slope*v + intercept.

    LINEAR:       y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255, clipped to [0, 255]
    LINEAR_EXACT: y = ((x - c) / w + 0.5) * 255, clipped to [0, 255]
    SIGMOID:      y = 255 / (1 + exp(-4 (x - c) / w))
    """
    output = np.empty(values.shape, dtype=np.float32)
    if function is VoiLutFunction.SIGMOID:
        # exponent = -4 (slope*v + intercept - c) / w, computed as one multiply-add.
        np.multiply(values, np.float32(-4.0 * slope / width), out=output, dtype=np.float32)
        output += np.float32(-4.0 * (intercept - center) / width)
        with np.errstate(over="ignore"):
            np.exp(output, out=output)
        output += 1.0
        np.divide(np.float32(255.0), output, out=output)
        if invert:
            np.subtract(np.float32(255.0), output, out=output)
    elif function is VoiLutFunction.LINEAR and width <= 1:
        # w = 1: the ramp collapses to a step at c - 0.5 (PS3.3 §C.11.2.1.2.1).
        threshold = center - 0.5
        above = np.multiply(values, np.float32(slope), dtype=np.float32) + np.float32(intercept) > threshold
        output = np.where(above != invert, np.float32(255.0), np.float32(0.0)).astype(np.float32)
    else:
        if function is VoiLutFunction.LINEAR:
            scale, origin = 255.0 / (width - 1.0), center - 0.5
        else:
            scale, origin = 255.0 / width, center
        gain = slope * scale
        offset = (intercept - origin) * scale + 127.5
        if invert:
            gain, offset = -gain, 255.0 - offset
        np.multiply(values, np.float32(gain), out=output, dtype=np.float32)
        output += np.float32(offset)
    np.clip(output, 0.0, 255.0, out=output)
    output += 0.5  # round half up on the way to uint8
    return output.astype(np.uint8)


def _apply_full_range_window(values: np.ndarray, slope: float, intercept: float, invert: bool) -> np.ndarray:
    """No VOI in the dataset or request: stretch the frame's own range (min -> 0, max -> 255)."""
    lowest, highest = float(values.min()), float(values.max())
    low, high = sorted((lowest * slope + intercept, highest * slope + intercept))
    if high <= low:
        return np.full(values.shape, 255 if invert else 0, dtype=np.uint8)
    return _apply_window(
        values, slope, intercept, (low + high) / 2.0, high - low, VoiLutFunction.LINEAR_EXACT, invert
    )


def _apply_voi_lookup_table(values: np.ndarray, item: Dataset, dataset: Dataset, invert: bool) -> np.ndarray:
    """VOI LUT Sequence (PS3.3 §C.11.2.1.1): output range 0 .. 2^bits - 1 scaled to 0 .. 255."""
    table = _lookup_table_entries(item, dataset)
    bits_per_entry = int(item.LUTDescriptor[2])
    full_scale = float(2**bits_per_entry - 1)
    if table.size and float(table.max()) > full_scale:
        full_scale = float(table.max())  # some writers declare fewer bits than they use
    eight_bit_table = np.clip(np.rint(table.astype(np.float32) * (255.0 / full_scale)), 0, 255).astype(
        np.uint8
    )
    if invert:
        eight_bit_table = 255 - eight_bit_table
    return eight_bit_table[_lookup_indexes(values, item, table.size)]


def _apply_lookup_table(values: np.ndarray, item: Dataset, dataset: Dataset) -> np.ndarray:
    """Modality LUT Sequence mapping (PS3.3 §C.11.1.1.1): entries below/above the table clamp to its ends."""
    table = _lookup_table_entries(item, dataset)
    return table[_lookup_indexes(values, item, table.size)]


def _lookup_indexes(values: np.ndarray, item: Dataset, entry_count: int) -> np.ndarray:
    first_mapped = int(item.LUTDescriptor[1])
    indexes = np.rint(values) if values.dtype.kind == "f" else values
    return np.clip(indexes.astype(np.int64) - first_mapped, 0, entry_count - 1)


def _lookup_table_entries(item: Dataset, dataset: Dataset) -> np.ndarray:
    """LUT Data (0028,3006) as an array; the descriptor's first value 0 means 65536 entries (PS3.3 §C.11.1.1.1)."""
    descriptor = [int(value) for value in item.LUTDescriptor]
    entry_count = descriptor[0] or 65536
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        little_endian = dataset.original_encoding[1] is not False
        if len(data) >= 2 * entry_count:
            table = np.frombuffer(data, dtype="<u2" if little_endian else ">u2", count=entry_count)
        else:  # 8-bit entries packed one per byte
            table = np.frombuffer(data, dtype=np.uint8, count=min(entry_count, len(data)))
    elif isinstance(data, int):
        table = np.array([data])
    else:
        table = np.asarray(list(data))
    if table.size == 0:
        raise RenderingNotPossible("the lookup table has no entries")
    return table.astype(np.int64)


def _palette_to_display(dataset: Dataset, indexes: np.ndarray) -> np.ndarray:
    """PALETTE COLOR through the Red/Green/Blue Palette Color LUTs (PS3.3 §C.7.6.3.1.5, §C.7.9)."""
    try:
        rgb = apply_color_lut(indexes, dataset)
    except (ValueError, AttributeError, KeyError) as error:
        raise RenderingNotPossible(f"the palette color lookup tables cannot be applied: {error}") from error
    if rgb.dtype == np.uint8:
        return rgb
    # 16-bit palette entries span 0..65535; some writers store 8-bit values in 16-bit entries.
    return (rgb >> 8).astype(np.uint8) if int(rgb.max()) > 255 else rgb.astype(np.uint8)


def _to_eight_bits(pixels: np.ndarray, bits_stored: int) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    scale = 255.0 / float(2 ** max(bits_stored, 1) - 1)
    scaled = np.multiply(pixels, np.float32(scale), dtype=np.float32)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    scaled += 0.5
    return scaled.astype(np.uint8)


def _is_inverted(dataset: Dataset, photometric: str) -> bool:
    """MONOCHROME1 shows the minimum as white (PS3.3 §C.7.6.3.1.2); a Presentation LUT Shape of
    INVERSE inverts MONOCHROME2 (PS3.3 §C.11.6.1.2). For MONOCHROME1 an INVERSE shape is the same
    inversion, not a second one."""
    if photometric == "MONOCHROME1":
        return True
    return str(dataset.get("PresentationLUTShape", "")).upper() == "INVERSE"


def _first_item(dataset: Dataset, keyword: str) -> Dataset | None:
    sequence = dataset.get(keyword)
    return cast(Dataset, sequence[0]) if sequence else None


def _functional_group_item(dataset: Dataset, frame_index: int, keyword: str) -> Dataset | None:
    """The per-frame item, else the shared item, of a functional group macro (PS3.3 §C.7.6.16)."""
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame_index < len(per_frame):
        item = _first_item(per_frame[frame_index], keyword)
        if item is not None:
            return item
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        return _first_item(shared[0], keyword)
    return None


def _rescale_for_frame(dataset: Dataset, frame_index: int) -> tuple[float, float]:
    """Rescale Slope/Intercept (PS3.3 §C.11.1); enhanced objects keep them in the Pixel Value
    Transformation functional group (PS3.3 §C.7.6.16.2.9)."""
    source = _functional_group_item(dataset, frame_index, "PixelValueTransformationSequence") or dataset
    try:
        slope = float(source.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(source.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
        return 1.0, 0.0
    return slope, intercept


def _window_for_frame(dataset: Dataset, frame_index: int) -> tuple[float, float, VoiLutFunction] | None:
    """The first Window Center/Width pair (PS3.3 §C.11.2.1.2), from the Frame VOI LUT functional group
    for enhanced objects (PS3.3 §C.7.6.16.2.10); None when absent or unusable."""
    source = _functional_group_item(dataset, frame_index, "FrameVOILUTSequence") or dataset
    center, width = _first_value(source.get("WindowCenter")), _first_value(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    try:
        function = VoiLutFunction(str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").upper())
    except ValueError:
        function = VoiLutFunction.LINEAR
    try:
        _check_window(center, width, function)
    except RenderingParameterError:
        return None
    return center, width, function


def _first_value(value: object) -> float | None:
    """The first value of a possibly multi-valued DS attribute, or None when missing or not a number."""
    if isinstance(value, MultiValue | list | tuple):
        if len(value) == 0:
            return None
        value = value[0]
    if value is None or value == "":
        return None
    try:
        number = float(cast(float, value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _crop(display: np.ndarray, region: SourceRegion | None) -> np.ndarray:
    """Cut the viewport's source region out of the frame, flipping for negative sw/sh."""
    if region is None:
        return display
    rows, columns = display.shape[0], display.shape[1]
    if region.x >= columns or region.y >= rows:
        raise RenderingParameterError(
            f"viewport region starts at {region.x},{region.y}, outside the {columns}x{rows} frame"
        )
    column_slice = _axis_slice(region.x, region.width, columns)
    row_slice = _axis_slice(region.y, region.height, rows)
    cropped = display[row_slice, column_slice]
    if cropped.shape[0] == 0 or cropped.shape[1] == 0:
        raise RenderingParameterError("the viewport region is empty")
    return np.ascontiguousarray(cropped)


def _axis_slice(start: int, length: int | None, size: int) -> slice:
    if length is None:
        return slice(start, size)
    if length > 0:
        return slice(start, min(start + length, size))
    # Negative length: the |length| pixels ending at start, in reverse order.
    stop = start + length  # exclusive lower bound when stepping backwards
    return slice(start, stop if stop >= 0 else None, -1)


def _fit_to_viewport(image: Image.Image, viewport: tuple[int, int] | None) -> Image.Image:
    """Scale to the largest size that fits the viewport with the same aspect ratio (PS3.18 §10.4.1.1.3.3)."""
    if viewport is None:
        return image
    maximum_width, maximum_height = viewport
    scale = min(maximum_width / image.width, maximum_height / image.height)
    target = (
        min(maximum_width, max(1, round(image.width * scale))),
        min(maximum_height, max(1, round(image.height * scale))),
    )
    if target == image.size:
        return image
    # Downscaling: Pillow's antialiased bilinear is close to Lanczos in look and about twice as fast;
    # reducing_gap first shrinks by whole factors. Upscaling: Lanczos keeps edges crisp.
    if scale < 1:
        return image.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image.resize(target, Image.Resampling.LANCZOS)


def _encode_image(image: Image.Image, media_type: RenderedMediaType, quality: int) -> bytes:
    buffer = io.BytesIO()
    if media_type == "image/png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def warm_up() -> None:
    """Render a small synthetic frame as JPEG and PNG once, so that a web process's first rendered
    request does not also pay for loading pydicom's pixel decoders and Pillow's encoders (a few
    milliseconds each, once per process: in a four-process server, one request in ten of a short
    viewing session; docs/benchmarks.md)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.Rows = dataset.Columns = 16
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelData = (np.arange(256, dtype=np.uint16) * 16).tobytes()
    for media_type in RENDERED_MEDIA_TYPES:
        render_frame(dataset, RenderOptions(media_type=media_type, window=(2048.0, 4096.0)))
