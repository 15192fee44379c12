"""Frames and transfer syntaxes for WADO-RS: extract, decode and transcode pixel data (no Django imports).

One module over 500 lines on purpose: extraction, decoding and transcoding share the frame and
byte-order helpers below, and every WADO-RS representation goes through them.

What a WADO-RS server must do with the stored bytes of one instance:

- Retrieve frames (PS3.18 §10.4.1.1.2, frame list 1-based): compressed frames are sent exactly as
  stored, with the media type of their transfer syntax (PS3.18 §8.7.3.3.2, Table 8.7.3-5), and
  uncompressed frames as ``application/octet-stream`` in little endian (PS3.18 §8.7.3.3.1).
- Decode a compressed frame when the client only accepts ``application/octet-stream``.
- Re-encode a whole instance as Explicit VR Little Endian (PS3.5 §A.2) when the client does not
  accept the stored transfer syntax, or answer "not possible" so the view can reply 406.

Encapsulated pixel data (fragments, Basic Offset Table, Extended Offset Table) follows PS3.5 §A.4;
native pixel data layout follows PS3.5 §8.1.1 and PS3.3 §C.7.6.3.1.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames, get_frame
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from apps.dicom import jpeg_extended_decoder

jpeg_extended_decoder.register()

OCTET_STREAM: Final = "application/octet-stream"

# Transfer syntaxes newer than pydicom 3.0's UID constants (PS3.6 Table A-1).
ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN: Final = UID("1.2.840.10008.1.2.1.98")
JPEG_XL_LOSSLESS: Final = UID("1.2.840.10008.1.2.4.110")
JPEG_XL_JPEG_RECOMPRESSION: Final = UID("1.2.840.10008.1.2.4.111")
JPEG_XL: Final = UID("1.2.840.10008.1.2.4.112")

#: Transfer syntaxes whose pixel data is stored natively (not encapsulated), PS3.5 §A.1-A.3 and §A.5.
NATIVE_TRANSFER_SYNTAXES: Final = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian}
)

_MPEG2_TRANSFER_SYNTAXES: Final = (
    "1.2.840.10008.1.2.4.100",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.100.1",  # fragmentable
    "1.2.840.10008.1.2.4.101",  # MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.101.1",
)
_MPEG4_TRANSFER_SYNTAXES: Final = (
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.102.1",
    "1.2.840.10008.1.2.4.103",  # BD-compatible High Profile / Level 4.1
    "1.2.840.10008.1.2.4.103.1",
    "1.2.840.10008.1.2.4.104",  # High Profile / Level 4.2 for 2D video
    "1.2.840.10008.1.2.4.104.1",
    "1.2.840.10008.1.2.4.105",  # High Profile / Level 4.2 for 3D video
    "1.2.840.10008.1.2.4.105.1",
    "1.2.840.10008.1.2.4.106",  # Stereo High Profile / Level 4.2
    "1.2.840.10008.1.2.4.106.1",
)
_HEVC_TRANSFER_SYNTAXES: Final = (
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main Profile / Level 5.1
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10 Profile / Level 5.1
)

#: Video transfer syntaxes: the whole pixel data is one stream, so single frames cannot be cut out.
VIDEO_TRANSFER_SYNTAXES: Final = frozenset(
    UID(uid) for uid in (*_MPEG2_TRANSFER_SYNTAXES, *_MPEG4_TRANSFER_SYNTAXES, *_HEVC_TRANSFER_SYNTAXES)
)

#: Media type of the pixel data (one frame, or the video stream) for each transfer syntax:
#: PS3.18 §8.7.3.3.2 Table 8.7.3-5 and the media type grammar of PS3.18 §8.7.3.5.
TRANSFER_SYNTAX_MEDIA_TYPES: Final[dict[str, str]] = {
    ImplicitVRLittleEndian: OCTET_STREAM,
    ExplicitVRLittleEndian: OCTET_STREAM,
    DeflatedExplicitVRLittleEndian: OCTET_STREAM,
    ExplicitVRBigEndian: OCTET_STREAM,
    ENCAPSULATED_UNCOMPRESSED_EXPLICIT_VR_LITTLE_ENDIAN: OCTET_STREAM,
    JPEGBaseline8Bit: "image/jpeg",
    JPEGExtended12Bit: "image/jpeg",
    JPEGLossless: "image/jpeg",
    JPEGLosslessSV1: "image/jpeg",
    JPEGLSLossless: "image/jls",
    JPEGLSNearLossless: "image/jls",
    JPEG2000Lossless: "image/jp2",
    JPEG2000: "image/jp2",
    JPEG2000MCLossless: "image/jpx",
    JPEG2000MC: "image/jpx",
    HTJ2KLossless: "image/jphc",
    HTJ2KLosslessRPCL: "image/jphc",
    HTJ2K: "image/jphc",
    RLELossless: "image/dicom-rle",
    JPEG_XL_LOSSLESS: "image/jxl",
    JPEG_XL_JPEG_RECOMPRESSION: "image/jxl",
    JPEG_XL: "image/jxl",
    **{UID(uid): "video/mpeg" for uid in _MPEG2_TRANSFER_SYNTAXES},
    **{UID(uid): "video/mp4" for uid in _MPEG4_TRANSFER_SYNTAXES},
    **{UID(uid): "video/H265" for uid in _HEVC_TRANSFER_SYNTAXES},
}

#: Transfer syntaxes PS3.18 §8.7.3 forbids in web services ("shall not be used with Web Services").
WEB_FORBIDDEN_TRANSFER_SYNTAXES: Final = frozenset({ImplicitVRLittleEndian, ExplicitVRBigEndian})

#: Transfer syntaxes whose pixel data may be held only in lossy form (lossy, or lossy-capable without
#: a lossless-only variant). PS3.18 §8.7.3 lets a response without a transfer-syntax parameter keep
#: such pixel data as stored instead of the default Explicit VR Little Endian.
LOSSY_TRANSFER_SYNTAXES: Final = frozenset({
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000, JPEG2000MC, HTJ2K, JPEG_XL,
    *VIDEO_TRANSFER_SYNTAXES,
})


# Transfer syntaxes that are lossy whatever the encoder settings, with the Lossy Image Compression
# Method (0028,2114) defined term for each (PS3.3 §C.7.6.1.1.5.1).
_ALWAYS_LOSSY_COMPRESSION_METHODS: Final[dict[str, str]] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
}

_JPEG2000_MINIMUM_SIDE: Final = 32
_PIXEL_DATA_KEYWORDS: Final = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Byte width used to swap other-word values from big to little endian (PS3.5 §7.3 and Table 6.2-1).
_SWAP_WIDTH_BY_VR: Final[dict[str, int]] = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


class PixelDataError(Exception):
    """The pixel data of an instance cannot be served in the form asked for."""


class FrameNotFound(PixelDataError, LookupError):
    """A requested frame number does not exist in the instance (or it has no pixel data at all)."""


class TranscodeNotPossible(PixelDataError):
    """The pixel data cannot be decoded or re-encoded here; a WADO-RS view answers 406 Not Acceptable."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame's bytes as sent in a WADO-RS frames response part (PS3.18 §8.6.1.2, §10.4.3.2.3)."""

    data: bytes
    media_type: str
    transfer_syntax_uid: str


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame and the Image Pixel attributes that describe the array (PS3.3 §C.7.6.3).

    ``photometric_interpretation`` is the decoded colour space: YBR_FULL, YBR_FULL_422, YBR_ICT and
    YBR_RCT data comes out as RGB, with colour-by-pixel planar configuration 0.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int


def can_decode(transfer_syntax_uid: str) -> bool:
    """Whether pixel data in this transfer syntax can be decoded with the installed plugins."""
    uid = UID(transfer_syntax_uid)
    if uid in NATIVE_TRANSFER_SYNTAXES:
        return True
    try:
        return bool(get_decoder(uid).is_available)
    except NotImplementedError:
        return False


def media_type_for_transfer_syntax(transfer_syntax_uid: str) -> str:
    """The bulk data media type of a transfer syntax (PS3.18 Table 8.7.3-5); unknown ones are refused."""
    try:
        return TRANSFER_SYNTAX_MEDIA_TYPES[UID(transfer_syntax_uid)]
    except KeyError:
        raise TranscodeNotPossible(
            f"no DICOMweb media type is defined for transfer syntax {transfer_syntax_uid}"
        ) from None


def number_of_frames(dataset: Dataset) -> int:
    """Number of Frames (0028,0008), or 1 for a single-frame instance (PS3.3 §C.7.6.6)."""
    value = dataset.get("NumberOfFrames")
    try:
        count = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        count = 1
    return max(count, 1)


def transfer_syntax_of(dataset: Dataset) -> UID:
    """The Transfer Syntax UID (0002,0010) from the File Meta Information (PS3.10 §7.1)."""
    file_meta = getattr(dataset, "file_meta", None)
    transfer_syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if not transfer_syntax:
        raise TranscodeNotPossible("the dataset has no (0002,0010) Transfer Syntax UID in its file meta")
    return UID(transfer_syntax)


def pixel_data_keyword(dataset: Dataset) -> str | None:
    """Which of Pixel Data, Float Pixel Data or Double Float Pixel Data (7FE0,0010/0008/0009) is present."""
    for keyword in _PIXEL_DATA_KEYWORDS:
        if keyword in dataset and dataset[keyword].value:
            return keyword
    return None


def extract_frames(dataset: Dataset, frame_numbers: Sequence[int]) -> list[Frame]:
    """The requested frames (1-based, in the order asked) exactly as stored.

    Encapsulated frames are returned byte for byte without their item headers, located with the
    Extended Offset Table or Basic Offset Table when present (PS3.5 §A.4). Native frames are cut from
    the pixel data (PS3.5 §8.1.1), re-packed when a BitsAllocated = 1 frame does not start on a byte
    boundary, and converted to little endian if the instance is Explicit VR Big Endian.
    """
    keyword = _require_pixel_data(dataset)
    indexes = _frame_indexes(frame_numbers, number_of_frames(dataset))
    transfer_syntax = transfer_syntax_of(dataset)
    if transfer_syntax in NATIVE_TRANSFER_SYNTAXES:
        return [
            Frame(
                data=_native_frame_bytes(dataset, keyword, index, transfer_syntax),
                media_type=OCTET_STREAM,
                transfer_syntax_uid=str(ExplicitVRLittleEndian),
            )
            for index in indexes
        ]
    media_type = media_type_for_transfer_syntax(transfer_syntax)
    if transfer_syntax in VIDEO_TRANSFER_SYNTAXES:
        raise TranscodeNotPossible(
            f"{transfer_syntax.name} pixel data is one video stream; single frames cannot be cut out of it"
        )
    encapsulated_frames = _encapsulated_frames(dataset, indexes)
    return [
        Frame(
            data=encapsulated_frames[index], media_type=media_type, transfer_syntax_uid=str(transfer_syntax)
        )
        for index in indexes
    ]


def decode_frame(dataset: Dataset, frame_number: int) -> DecodedFrame:
    """Decode one frame (1-based) without decoding the others, colour converted to RGB (PS3.5 §8.2).

    Raises FrameNotFound for a frame that does not exist and TranscodeNotPossible when the transfer
    syntax cannot be decoded by the installed plugins or the data is corrupt.
    """
    _require_pixel_data(dataset)
    (index,) = _frame_indexes([frame_number], number_of_frames(dataset))
    transfer_syntax = transfer_syntax_of(dataset)
    if transfer_syntax in VIDEO_TRANSFER_SYNTAXES or not can_decode(transfer_syntax):
        raise TranscodeNotPossible(f"pixel data in {transfer_syntax.name} cannot be decoded here")
    try:
        # raw=False (the default) converts YBR_FULL / YBR_FULL_422 to RGB while decoding.
        pixels, properties = get_decoder(transfer_syntax).as_array(dataset, index=index)
    except (RuntimeError, ValueError, NotImplementedError, AttributeError, KeyError) as error:
        raise TranscodeNotPossible(f"frame {frame_number} could not be decoded: {error}") from error
    return DecodedFrame(
        pixels=pixels,
        photometric_interpretation=str(properties["photometric_interpretation"]),
        samples_per_pixel=int(properties["samples_per_pixel"]),
        bits_allocated=int(properties["bits_allocated"]),
        bits_stored=int(properties.get("bits_stored", properties["bits_allocated"])),
        pixel_representation=int(properties.get("pixel_representation", 0)),
    )


def decode_frame_to_uncompressed(dataset: Dataset, frame_number: int) -> bytes:
    """One frame (1-based) as uncompressed little endian bytes, for an ``application/octet-stream`` request.

    Native frames are returned as stored (see ``extract_frames``). Compressed frames are decoded;
    each sample keeps BitsAllocated bits (PS3.5 §8.1.1) and colour comes out as RGB with planar
    configuration 0 (see ``uncompressed_photometric_interpretation`` for the metadata to go with it).
    """
    keyword = _require_pixel_data(dataset)
    transfer_syntax = transfer_syntax_of(dataset)
    if transfer_syntax in NATIVE_TRANSFER_SYNTAXES:
        (index,) = _frame_indexes([frame_number], number_of_frames(dataset))
        return _native_frame_bytes(dataset, keyword, index, transfer_syntax)
    decoded = decode_frame(dataset, frame_number)
    return _little_endian_bytes(decoded, keyword)


def uncompressed_photometric_interpretation(dataset: Dataset) -> str:
    """The Photometric Interpretation of the instance once decoded here (YBR colour spaces become RGB)."""
    photometric = str(dataset.get("PhotometricInterpretation", ""))
    try:
        is_native = transfer_syntax_of(dataset) in NATIVE_TRANSFER_SYNTAXES
    except TranscodeNotPossible:
        is_native = True
    if not is_native and photometric in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"):
        return "RGB"
    return photometric


def transcode_to_explicit_vr_little_endian(data: bytes) -> bytes:
    """Re-encode a DICOM Part 10 file as Explicit VR Little Endian (PS3.5 §A.2, PS3.10 §7.1).

    Compressed pixel data is decoded (colour to RGB); the SOP Instance UID is kept because a change
    of transfer syntax does not make a new instance. A lossy source keeps or gains Lossy Image
    Compression "01" (PS3.3 §C.7.6.1.1.5: once lossy, never reset). Raises TranscodeNotPossible
    when the bytes are not DICOM or the pixel data cannot be decoded here.
    """
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as error:
        raise TranscodeNotPossible(f"the bytes are not a readable DICOM Part 10 file: {error}") from error
    file_meta = getattr(dataset, "file_meta", None)
    source_syntax = UID(file_meta.get("TransferSyntaxUID", "")) if file_meta is not None else UID("")
    if source_syntax == ExplicitVRLittleEndian:
        return data
    if pixel_data_keyword(dataset) is not None and source_syntax not in NATIVE_TRANSFER_SYNTAXES:
        _decompress_in_place(dataset, source_syntax)
    elif source_syntax == ExplicitVRBigEndian or dataset.original_encoding[1] is False:
        _swap_big_endian_binary_values(dataset)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # PS3.10 §7.1: the Implementation Class UID names the implementation that last wrote the file.
    dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset.file_meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def check_transcodable(dataset: Dataset) -> None:
    """Raise TranscodeNotPossible unless the instance can be re-encoded as Explicit VR Little Endian.

    Checked before a response's first byte, so a retrieve answers 406 (or sends the instance as
    stored, PS3.18 §8.7.3) rather than breaking off mid-stream: native pixel data always can;
    encapsulated pixel data must split into its Number of Frames frames and its first frame must
    decode with the installed plugins (decoding every frame would cost the transcode twice).
    """
    if pixel_data_keyword(dataset) is None:
        return
    transfer_syntax = transfer_syntax_of(dataset)
    if transfer_syntax in NATIVE_TRANSFER_SYNTAXES:
        return
    if transfer_syntax in VIDEO_TRANSFER_SYNTAXES or not can_decode(transfer_syntax):
        raise TranscodeNotPossible(f"pixel data in {transfer_syntax.name or transfer_syntax} cannot be decoded here")
    try:
        extract_frames(dataset, range(1, number_of_frames(dataset) + 1))
    except FrameNotFound as error:
        raise TranscodeNotPossible(f"the pixel data is damaged: {error}") from error
    decode_frame(dataset, 1)


def encode_frame_jpeg2000(dataset: Dataset, frame_number: int) -> Frame:
    """One frame (1-based) re-encoded as a lossless JPEG 2000 codestream (PS3.5 §8.2.4, media type image/jp2).

    Colour frames are encoded as RGB without the multi-component transform. Raises TranscodeNotPossible
    for data JPEG 2000 cannot hold here (float pixels, 1-bit, more than 24 bits stored) or when no
    encoder plugin (pylibjpeg-openjpeg) is installed.
    """
    keyword = _require_pixel_data(dataset)
    if keyword != "PixelData":
        raise TranscodeNotPossible("float pixel data cannot be encoded as JPEG 2000")
    encoder = get_encoder(JPEG2000Lossless)
    if not encoder.is_available:
        raise TranscodeNotPossible("no JPEG 2000 encoder plugin (pylibjpeg-openjpeg) is installed")
    decoded = decode_frame(dataset, frame_number)
    if decoded.bits_allocated == 1 or decoded.bits_stored > 24:
        raise TranscodeNotPossible(f"{decoded.bits_stored}-bit samples cannot be encoded as JPEG 2000 here")
    # OpenJPEG as wrapped by pylibjpeg always uses 6 wavelet resolutions, which needs 2^5 pixels a side.
    if min(decoded.pixels.shape[:2]) < _JPEG2000_MINIMUM_SIDE:
        raise TranscodeNotPossible(
            f"a {decoded.pixels.shape[1]}x{decoded.pixels.shape[0]} frame is too small for the JPEG 2000 "
            f"encoder (at least {_JPEG2000_MINIMUM_SIDE} pixels a side)"
        )
    try:
        codestream = encoder.encode(
            decoded.pixels,
            rows=decoded.pixels.shape[0],
            columns=decoded.pixels.shape[1],
            number_of_frames=1,
            samples_per_pixel=decoded.samples_per_pixel,
            bits_allocated=decoded.bits_allocated,
            bits_stored=decoded.bits_stored,
            pixel_representation=decoded.pixel_representation,
            photometric_interpretation=decoded.photometric_interpretation,
            planar_configuration=0,  # decoded colour is always colour-by-pixel
        )
    except (RuntimeError, ValueError) as error:
        raise TranscodeNotPossible(
            f"frame {frame_number} could not be encoded as JPEG 2000: {error}"
        ) from error
    return Frame(data=bytes(codestream), media_type="image/jp2", transfer_syntax_uid=str(JPEG2000Lossless))


# --- helpers -------------------------------------------------------------------------------------


def _require_pixel_data(dataset: Dataset) -> str:
    keyword = pixel_data_keyword(dataset)
    if keyword is None:
        raise FrameNotFound("the instance has no pixel data, so it has no frames")
    return keyword


def _frame_indexes(frame_numbers: Sequence[int], frame_count: int) -> list[int]:
    """0-based indexes for 1-based frame numbers (PS3.18 §10.4.1.1.2), refusing any out of range."""
    if not frame_numbers:
        raise FrameNotFound("no frame number was requested")
    indexes = []
    for frame_number in frame_numbers:
        if isinstance(frame_number, bool) or not isinstance(frame_number, int | np.integer):
            raise FrameNotFound(f"frame number {frame_number!r} is not an integer")
        if not 1 <= frame_number <= frame_count:
            raise FrameNotFound(
                f"frame {frame_number} does not exist: the instance has {frame_count} frame(s)"
            )
        indexes.append(int(frame_number) - 1)
    return indexes


def _encapsulated_frames(dataset: Dataset, indexes: list[int]) -> dict[int, bytes]:
    """Frame bytes by index, joining fragments; PS3.5 §A.4 (offset tables) and Table A.4-1/A.4-2."""
    encapsulated = dataset.PixelData
    frame_count = number_of_frames(dataset)
    extended_offsets: tuple[bytes, bytes] | None = None
    if dataset.get("ExtendedOffsetTable") and dataset.get("ExtendedOffsetTableLengths"):
        extended_offsets = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
    try:
        if len(set(indexes)) == 1:
            # One lookup through the offset table (or a scan of item headers when it is empty).
            index = indexes[0]
            return {
                index: get_frame(
                    encapsulated, index, extended_offsets=extended_offsets, number_of_frames=frame_count
                )
            }
        wanted = set(indexes)
        frames: dict[int, bytes] = {}
        generator = generate_frames(
            encapsulated, number_of_frames=frame_count, extended_offsets=extended_offsets
        )
        for index, frame in enumerate(generator):
            if index in wanted:
                frames[index] = frame
                if len(frames) == len(wanted):
                    break
    except (ValueError, KeyError, EOFError) as error:
        raise TranscodeNotPossible(
            f"the encapsulated pixel data cannot be split into frames: {error}"
        ) from error
    missing = wanted - frames.keys()
    if missing:
        raise FrameNotFound(f"frame {min(missing) + 1} is missing from the encapsulated pixel data")
    return frames


def _native_bits_per_frame(dataset: Dataset, keyword: str) -> int:
    """Bits of one native frame: Rows x Columns x Samples per Pixel x Bits Allocated (PS3.5 §8.1.1).

    YBR_FULL_422 native data is horizontally subsampled: two luminance and one pair of chroma samples
    per two pixels, so a frame holds two thirds of the samples (PS3.3 §C.7.6.3.1.2).
    """
    default_bits = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}.get(keyword, 16)
    bits_allocated = int(dataset.get("BitsAllocated", default_bits))
    samples_per_pixel = int(dataset.get("SamplesPerPixel", 1))
    bits = int(dataset.Rows) * int(dataset.Columns) * samples_per_pixel * bits_allocated
    if samples_per_pixel == 3 and dataset.get("PhotometricInterpretation") == "YBR_FULL_422":
        bits = bits * 2 // 3
    return bits


def _native_frame_bytes(dataset: Dataset, keyword: str, index: int, transfer_syntax: UID) -> bytes:
    bits_per_frame = _native_bits_per_frame(dataset, keyword)
    pixel_bytes = _little_endian_pixel_bytes(dataset, keyword, transfer_syntax)
    start_bit = index * bits_per_frame
    end_bit = start_bit + bits_per_frame
    if len(pixel_bytes) * 8 < end_bit:
        raise TranscodeNotPossible(
            f"the pixel data is truncated: frame {index + 1} needs bytes up to {math.ceil(end_bit / 8)}, "
            f"only {len(pixel_bytes)} are stored"
        )
    if start_bit % 8 == 0:
        return bytes(memoryview(pixel_bytes)[start_bit // 8 : math.ceil(end_bit / 8)])
    # Bits Allocated 1: frames are packed end to end, least significant bit first (PS3.5 §8.1.1,
    # Annex D), so a frame that starts inside a byte is shifted to start on a byte boundary.
    first_byte, last_byte = start_bit // 8, math.ceil(end_bit / 8)
    bits = np.unpackbits(np.frombuffer(pixel_bytes[first_byte:last_byte], dtype=np.uint8), bitorder="little")
    offset = start_bit - first_byte * 8
    return np.packbits(bits[offset : offset + bits_per_frame], bitorder="little").tobytes()


def _little_endian_pixel_bytes(dataset: Dataset, keyword: str, transfer_syntax: UID) -> bytes:
    value: bytes = dataset[keyword].value
    if transfer_syntax != ExplicitVRBigEndian:
        return value
    # Explicit VR Big Endian (PS3.5 §A.3, retired): OW words are byte swapped, so 8-bit samples in
    # OW are swapped pairwise; wider samples are swapped by their own width.
    element = dataset[keyword]
    bits_allocated = int(dataset.get("BitsAllocated", 8))
    if element.VR == "OB" or bits_allocated == 1:
        if bits_allocated == 1 and element.VR != "OB":
            raise TranscodeNotPossible("1-bit big endian pixel data is not supported")
        return value
    width = max(2, bits_allocated // 8) if element.VR == "OW" else _SWAP_WIDTH_BY_VR.get(element.VR, 2)
    return _swap_bytes(value, width)


def _swap_bytes(value: bytes, width: int) -> bytes:
    padded = value + b"\x00" * (-len(value) % width)
    swapped = np.frombuffer(padded, dtype=f">u{width}").astype(f"<u{width}").tobytes()
    return swapped[: len(value)]


def _little_endian_bytes(decoded: DecodedFrame, keyword: str) -> bytes:
    if decoded.bits_allocated == 1:
        return np.packbits(decoded.pixels.astype(bool).ravel(), bitorder="little").tobytes()
    kind = "f" if keyword != "PixelData" else ("i" if decoded.pixel_representation == 1 else "u")
    dtype = np.dtype(f"<{kind}{decoded.bits_allocated // 8}")
    return np.ascontiguousarray(decoded.pixels, dtype=dtype).tobytes()


def _decompress_in_place(dataset: Dataset, source_syntax: UID) -> None:
    if source_syntax in VIDEO_TRANSFER_SYNTAXES or not can_decode(source_syntax):
        raise TranscodeNotPossible(
            f"pixel data in {source_syntax.name or source_syntax} cannot be decoded here"
        )
    compression_method = _ALWAYS_LOSSY_COMPRESSION_METHODS.get(source_syntax)
    if compression_method and dataset.get("LossyImageCompression") != "01":
        dataset.LossyImageCompression = "01"
        dataset.LossyImageCompressionMethod = compression_method
    try:
        dataset.decompress(as_rgb=True, generate_instance_uid=False)
    except (RuntimeError, ValueError, NotImplementedError, AttributeError, KeyError) as error:
        raise TranscodeNotPossible(f"the pixel data could not be decoded: {error}") from error


def _swap_big_endian_binary_values(dataset: Dataset) -> None:
    """Byte-swap every OW/OF/OL/OD/OV value so a big endian dataset can be written little endian.

    pydicom converts numeric VRs (US, SS, FL, ...) itself when writing; raw other-word values are
    written as they are, so they are swapped here (PS3.5 §7.3).
    """
    bits_allocated = int(dataset.get("BitsAllocated", 16))
    for element in dataset.iterall():
        if not isinstance(element.value, bytes | bytearray) or element.VR not in _SWAP_WIDTH_BY_VR:
            continue
        width = _SWAP_WIDTH_BY_VR[element.VR]
        if element.tag == 0x7FE00010 and element.VR == "OW":
            width = max(2, bits_allocated // 8)
        element.value = _swap_bytes(bytes(element.value), width)
