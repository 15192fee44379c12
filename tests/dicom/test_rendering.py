"""Rendering to JPEG/PNG: the DICOM grayscale pipeline on known values, colour, viewport and parameters."""

from __future__ import annotations

import io
import math

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.sequence import Sequence

from apps.dicom.rendering import (
    RenderingNotPossible,
    RenderingParameterError,
    RenderOptions,
    SourceRegion,
    Viewport,
    VoiLutFunction,
    parse_quality_parameter,
    parse_viewport_parameter,
    parse_window_parameter,
    render_frame,
    render_frame_array,
    render_thumbnail,
)
from apps.dicom.window_presets import WINDOW_PRESETS, default_window_for
from tests.factories.dicom_factory import (
    from_part10_bytes,
    make_ct_slice,
    make_dx_image,
    make_multiframe,
    make_secondary_capture,
    to_part10_bytes,
)

IDENTITY_WINDOW = (127.5, 255.0)  # LINEAR_EXACT with this window maps 0..255 onto itself


def decoded_image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def round_trip(dataset: Dataset) -> Dataset:
    return from_part10_bytes(to_part10_bytes(dataset))


def reference_voi(x: float, center: float, width: float, function: str) -> int:
    """PS3.3 §C.11.2.1.2.1 / §C.11.2.1.3 written out piecewise, rounded half up, for comparison."""
    if function == "LINEAR":
        if x <= center - 0.5 - (width - 1) / 2:
            y = 0.0
        elif x > center - 0.5 + (width - 1) / 2:
            y = 255.0
        else:
            y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    elif function == "LINEAR_EXACT":
        if x <= center - width / 2:
            y = 0.0
        elif x > center + width / 2:
            y = 255.0
        else:
            y = ((x - center) / width + 0.5) * 255
    else:
        exponent = min(-4 * (x - center) / width, 700.0)  # beyond that y is 0 anyway
        y = 255 / (1 + math.exp(exponent))
    return int(math.floor(y + 0.5))


def one_row(values: list[int], dtype: type = np.int16) -> np.ndarray:
    return np.array([values], dtype=dtype)


# --- VOI LUT (window) ----------------------------------------------------------------------------


def test_window_edges_map_to_black_and_white_and_centre_to_mid_grey():
    dataset = round_trip(make_secondary_capture(one_row([-160, 240, -500, 900, 40])))
    pixels = render_frame_array(dataset, RenderOptions(window=(40, 400)))
    assert pixels.tolist() == [[0, 255, 0, 255, 128]]


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), [(40, 400), (-600, 1500), (0, 2), (1000, 1)])
def test_every_voi_function_matches_the_standard_formula_within_one_grey_level(function, center, width):
    if function != "LINEAR" and width < 2:
        width = 2
    values = np.arange(-2048, 2048, dtype=np.int16).reshape(64, 64)
    dataset = round_trip(make_secondary_capture(values))
    options = RenderOptions(window=(center, width), window_function=VoiLutFunction(function))
    rendered = render_frame_array(dataset, options).astype(int)
    expected = np.array([reference_voi(float(x), center, width, function) for x in values.ravel()]).reshape(
        64, 64
    )
    assert np.abs(rendered - expected).max() <= 1
    assert (rendered == expected).mean() > 0.99


def test_rescale_slope_and_intercept_are_applied_before_the_window():
    # HU = 2 * stored - 1000: stored 450, 500, 525, 550 are -100, 0, 50, 100 HU.
    dataset = round_trip(
        make_secondary_capture(one_row([450, 500, 525, 550]), rescale_slope=2, rescale_intercept=-1000)
    )
    pixels = render_frame_array(
        dataset, RenderOptions(window=(0, 200), window_function=VoiLutFunction.LINEAR_EXACT)
    )
    assert pixels.tolist() == [[0, 128, 191, 255]]


def test_the_datasets_own_window_is_used_when_the_request_has_none():
    dataset = round_trip(make_secondary_capture(one_row([-160, 240, 40]), window_center=40, window_width=400))
    assert render_frame_array(dataset, RenderOptions()).tolist() == [[0, 255, 128]]


def test_a_requested_window_overrides_the_datasets_window():
    dataset = round_trip(make_secondary_capture(one_row([0, 100]), window_center=1000, window_width=10))
    pixels = render_frame_array(
        dataset, RenderOptions(window=(50, 100), window_function=VoiLutFunction.LINEAR_EXACT)
    )
    assert pixels.tolist() == [[0, 255]]


def test_the_datasets_voi_lut_function_is_honoured():
    dataset = make_secondary_capture(one_row([0, 100, 50]), window_center=50, window_width=100)
    dataset.VOILUTFunction = "LINEAR_EXACT"
    assert render_frame_array(round_trip(dataset), RenderOptions()).tolist() == [[0, 255, 128]]


def test_without_any_voi_the_frame_range_is_stretched_to_full_scale():
    dataset = round_trip(make_secondary_capture(one_row([-500, 0, 500])))
    assert render_frame_array(dataset, RenderOptions()).tolist() == [[0, 128, 255]]


def test_a_flat_frame_without_voi_renders_black_rather_than_failing():
    dataset = round_trip(make_secondary_capture(np.full((4, 4), 7, dtype=np.uint16)))
    assert render_frame_array(dataset, RenderOptions()).max() == 0


def test_signed_stored_values_are_read_as_negative_numbers():
    dataset = round_trip(
        make_secondary_capture(one_row([-1000, -1, 0, 1000]), window_center=0, window_width=2000)
    )
    assert dataset.PixelRepresentation == 1
    pixels = render_frame_array(dataset, RenderOptions(window_function=VoiLutFunction.LINEAR))
    assert pixels.tolist() == [[0, 127, 128, 255]]


def test_voi_lut_sequence_is_used_when_there_is_no_window():
    dataset = make_secondary_capture(one_row([50, 100, 227, 355, 1000], dtype=np.uint16))
    item = Dataset()
    item.LUTDescriptor = [256, 100, 8]
    # An inverting ramp, as OW bytes: the first mapped value 100 -> 255.
    item.add_new("LUTData", "OW", np.arange(255, -1, -1, dtype="<u2").tobytes())
    dataset.VOILUTSequence = Sequence([item])
    assert render_frame_array(round_trip(dataset), RenderOptions()).tolist() == [[255, 255, 128, 0, 0]]


def test_modality_lut_sequence_replaces_rescale():
    dataset = make_secondary_capture(one_row([0, 1, 2, 3, 9], dtype=np.uint16))
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.ModalityLUTType = "US"
    item.add_new("LUTData", "US", [0, 1000, 2000, 3000])
    dataset.ModalityLUTSequence = Sequence([item])
    options = RenderOptions(window=(1500, 3000), window_function=VoiLutFunction.LINEAR_EXACT)
    assert render_frame_array(round_trip(dataset), options).tolist() == [[0, 85, 170, 255, 255]]


def test_per_frame_functional_groups_give_each_frame_its_own_rescale_and_window():
    frames = np.full((2, 2, 2), 100, dtype=np.uint16)
    dataset = make_multiframe(number_of_frames=2, rows=2, columns=2, bits_allocated=16, pixels=frames)
    per_frame = []
    for intercept, center in ((0, 100), (-100, 100)):
        transformation, voi = Dataset(), Dataset()
        transformation.RescaleSlope, transformation.RescaleIntercept, transformation.RescaleType = (
            1,
            intercept,
            "US",
        )
        voi.WindowCenter, voi.WindowWidth, voi.VOILUTFunction = center, 100, "LINEAR_EXACT"
        group = Dataset()
        group.PixelValueTransformationSequence = Sequence([transformation])
        group.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(group)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    dataset = round_trip(dataset)
    assert render_frame_array(dataset, RenderOptions(frame_index=0)).tolist() == [[128, 128], [128, 128]]
    assert render_frame_array(dataset, RenderOptions(frame_index=1)).tolist() == [[0, 0], [0, 0]]


# --- presentation: MONOCHROME1, colour ------------------------------------------------------------


def test_monochrome1_is_inverted():
    values = one_row([-160, 240, 40])
    monochrome2 = render_frame_array(
        round_trip(make_secondary_capture(values)), RenderOptions(window=(40, 400))
    )
    monochrome1 = render_frame_array(
        round_trip(make_secondary_capture(values, photometric_interpretation="MONOCHROME1")),
        RenderOptions(window=(40, 400)),
    )
    assert monochrome1.tolist() == [[255, 0, 127]]
    assert (monochrome1.astype(int) + monochrome2.astype(int) == 255).all()


def test_a_monochrome1_radiograph_looks_like_its_monochrome2_twin():
    monochrome1 = render_frame_array(make_dx_image(photometric_interpretation="MONOCHROME1"), RenderOptions())
    monochrome2 = render_frame_array(make_dx_image(photometric_interpretation="MONOCHROME2"), RenderOptions())
    difference = np.abs(monochrome1.astype(int) - monochrome2.astype(int))
    assert difference.max() <= 1
    assert difference.mean() < 0.01


def test_presentation_lut_shape_inverse_inverts_monochrome2():
    dataset = make_secondary_capture(one_row([0, 255], dtype=np.uint8))
    dataset.PresentationLUTShape = "INVERSE"
    assert render_frame_array(round_trip(dataset), RenderOptions()).tolist() == [[255, 0]]


def test_rgb_pixels_are_rendered_unchanged_to_png():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    data = render_frame(round_trip(make_secondary_capture(rgb)), RenderOptions(media_type="image/png"))
    assert np.array_equal(decoded_image(data), rgb)


def test_a_requested_window_does_not_change_colour_images():
    rgb = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    pixels = render_frame_array(round_trip(make_secondary_capture(rgb)), RenderOptions(window=(10, 10)))
    assert np.array_equal(pixels, rgb)


def test_ybr_full_422_jpeg_frames_are_rendered_as_rgb():
    dataset = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    pixels = render_frame_array(dataset, RenderOptions(frame_index=3))
    assert np.array_equal(pixels, pydicom.pixels.pixel_array(dataset, index=3))


def test_native_ybr_full_422_is_converted_to_rgb():
    dataset = pydicom.dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    pixels = render_frame_array(dataset, RenderOptions())
    assert pixels.shape == (100, 100, 3)
    assert np.array_equal(pixels, dataset.pixel_array)  # pydicom returns RGB by default


def test_palette_color_goes_through_its_lookup_tables():
    dataset = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    pixels = render_frame_array(dataset, RenderOptions())
    expected = apply_color_lut(dataset.pixel_array, dataset)
    expected = (expected >> 8).astype(np.uint8) if expected.dtype != np.uint8 else expected
    assert pixels.shape == (800, 350, 3) or pixels.shape == expected.shape
    assert np.array_equal(pixels, expected)


def test_sixteen_bit_rgb_is_scaled_to_eight_bits():
    rgb = np.array([[[0, 32768, 65535]]], dtype=np.uint16)
    assert render_frame_array(round_trip(make_secondary_capture(rgb)), RenderOptions()).tolist() == [
        [[0, 128, 255]]
    ]


# --- frames, viewport and output formats ---------------------------------------------------------


def test_png_output_is_lossless():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    data = render_frame(round_trip(make_secondary_capture(values)), RenderOptions(media_type="image/png"))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert np.array_equal(decoded_image(data), values)


def test_jpeg_output_honours_quality():
    dataset = make_ct_slice(rows=128, columns=128)
    low = render_frame(dataset, RenderOptions(quality=10))
    high = render_frame(dataset, RenderOptions(quality=95))
    assert low.startswith(b"\xff\xd8") and high.startswith(b"\xff\xd8")
    assert len(low) < len(high)
    assert decoded_image(high).shape == (128, 128)


def test_frame_index_picks_that_frame_of_a_multi_frame_object():
    frames = np.stack([np.full((8, 8), 20 * index, dtype=np.uint8) for index in range(6)])
    dataset = round_trip(make_multiframe(number_of_frames=6, rows=8, columns=8, pixels=frames))
    options = RenderOptions(
        frame_index=4,
        window=IDENTITY_WINDOW,
        window_function=VoiLutFunction.LINEAR_EXACT,
        media_type="image/png",
    )
    assert np.array_equal(decoded_image(render_frame(dataset, options)), frames[4])


def test_a_frame_beyond_the_last_is_refused():
    dataset = make_multiframe(number_of_frames=3, rows=4, columns=4)
    with pytest.raises(RenderingParameterError, match="frame 4 does not exist"):
        render_frame(dataset, RenderOptions(frame_index=3))


@pytest.mark.parametrize(
    ("rows", "columns", "viewport", "expected_size"),
    [
        (256, 512, (128, 128), (128, 64)),  # wide: width limits
        (512, 256, (128, 128), (64, 128)),  # tall: height limits
        (256, 512, (1000, 64), (128, 64)),
        (32, 64, (256, 256), (256, 128)),  # scaled up to fit the viewport, never beyond it
        (100, 100, (100, 100), (100, 100)),
    ],
)
def test_viewport_keeps_the_aspect_ratio(rows, columns, viewport, expected_size):
    dataset = make_ct_slice(rows=rows, columns=columns)
    image = Image.open(io.BytesIO(render_frame(dataset, RenderOptions(viewport=viewport))))
    assert image.size == expected_size


def test_viewport_source_region_is_cropped_before_scaling():
    values = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 251
    dataset = round_trip(make_secondary_capture(values.astype(np.uint8)))
    viewport = parse_viewport_parameter("20,10,8,4,20,10")
    options = RenderOptions(
        viewport=(viewport.width, viewport.height),
        source_region=viewport.source_region,
        window=IDENTITY_WINDOW,
        window_function=VoiLutFunction.LINEAR_EXACT,
    )
    assert np.array_equal(render_frame_array(dataset, options), values[4:14, 8:28])


def test_negative_source_width_flips_the_region():
    values = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    dataset = round_trip(make_secondary_capture(values))
    options = RenderOptions(
        source_region=SourceRegion(x=3, y=0, width=-4, height=None),
        window=IDENTITY_WINDOW,
        window_function=VoiLutFunction.LINEAR_EXACT,
    )
    assert np.array_equal(render_frame_array(dataset, options), values[:, ::-1])


def test_a_source_region_outside_the_frame_is_refused():
    dataset = make_secondary_capture(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(RenderingParameterError, match="outside"):
        render_frame(dataset, RenderOptions(source_region=SourceRegion(x=4, y=0)))


def test_thumbnail_fits_the_size_and_shows_the_middle_frame():
    frames = np.stack([np.full((40, 80), 50 * index, dtype=np.uint8) for index in range(5)])
    dataset = round_trip(make_multiframe(number_of_frames=5, rows=40, columns=80, pixels=frames))
    thumbnail = decoded_image(render_thumbnail(dataset, size=64, media_type="image/png"))
    assert thumbnail.shape == (32, 64)
    middle = render_frame_array(dataset, RenderOptions(frame_index=2, viewport=(64, 64)))
    assert np.array_equal(thumbnail, middle)


def test_thumbnail_of_a_ct_slice_is_a_small_jpeg():
    data = render_thumbnail(make_ct_slice())
    assert data.startswith(b"\xff\xd8")
    assert Image.open(io.BytesIO(data)).size == (128, 128)


# --- objects that cannot be rendered -------------------------------------------------------------


def test_a_structured_report_cannot_be_rendered():
    report = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    with pytest.raises(RenderingNotPossible, match="no pixel data"):
        render_frame(report, RenderOptions())
    with pytest.raises(RenderingNotPossible):
        render_thumbnail(report)


def test_pixel_data_the_installed_decoders_reject_cannot_be_rendered():
    # pydicom's JPEG2000-embedded-sequence-delimiter.dcm holds a codestream no decoder reads.
    dataset = pydicom.dcmread(get_testdata_file("JPEG2000-embedded-sequence-delimiter.dcm"))
    with pytest.raises(RenderingNotPossible, match="could not be decoded"):
        render_frame(dataset, RenderOptions())


def test_pixel_data_in_a_transfer_syntax_without_a_decoder_cannot_be_rendered():
    dataset = make_ct_slice(rows=8, columns=8)
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.112"  # JPEG XL: no decoder installed
    with pytest.raises(RenderingNotPossible, match="cannot be decoded"):
        render_frame(dataset, RenderOptions())


# --- real-world files ----------------------------------------------------------------------------

RENDERABLE_TEST_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "JPEG-lossy.dcm",  # 12-bit JPEG Extended with a scan header libjpeg refuses: decoded by GDCM
    "JPEGLSNearLossless_16.dcm",
    "693_J2KI.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_2frame.dcm",
    "examples_ybr_color.dcm",
    "examples_palette.dcm",
    "liver_1frame.dcm",
    "rtdose.dcm",
    "image_dfl.dcm",
]


@pytest.mark.parametrize("name", RENDERABLE_TEST_FILES)
@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png"])
def test_pydicom_sample_files_render(name, media_type):
    dataset = pydicom.dcmread(get_testdata_file(name))
    data = render_frame(dataset, RenderOptions(media_type=media_type, viewport=(256, 256)))
    image = Image.open(io.BytesIO(data))
    assert image.format == ("PNG" if media_type == "image/png" else "JPEG")
    assert max(image.size) == 256 or image.size == (dataset.Columns, dataset.Rows)


# --- query parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("40,400", (40.0, 400.0, VoiLutFunction.LINEAR)),
        ("-600,1500,linear", (-600.0, 1500.0, VoiLutFunction.LINEAR)),
        ("50.5, 350, linear-exact", (50.5, 350.0, VoiLutFunction.LINEAR_EXACT)),
        ("0,0.5,SIGMOID", (0.0, 0.5, VoiLutFunction.SIGMOID)),
        ("0,2,LINEAR_EXACT", (0.0, 2.0, VoiLutFunction.LINEAR_EXACT)),
    ],
)
def test_window_parameter_is_parsed(text, expected):
    assert parse_window_parameter(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("40", "center,width"),
        ("40,400,linear,extra", "center,width"),
        ("abc,400", "window center must be a number"),
        ("40,nan", "finite"),
        ("40,0.5", ">= 1 for the linear function"),
        ("40,0,sigmoid", "must be > 0"),
        ("40,-5,linear-exact", "must be > 0"),
        ("40,400,gamma", "linear, linear-exact or sigmoid"),
    ],
)
def test_invalid_window_parameters_are_refused_with_a_reason(text, message):
    with pytest.raises(RenderingParameterError, match=message):
        parse_window_parameter(text)


def test_viewport_parameter_is_parsed():
    assert parse_viewport_parameter("512,256") == Viewport(width=512, height=256)
    assert parse_viewport_parameter("100,100,10,20,30,40") == Viewport(100, 100, SourceRegion(10, 20, 30, 40))
    assert parse_viewport_parameter("100,100,,,-30,") == Viewport(100, 100, SourceRegion(0, 0, -30, None))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("512", "vw,vh"),
        ("1,2,3", "vw,vh"),
        ("0,100", "from 1 to"),
        ("100000,100", "from 1 to"),
        ("a,100", "viewport width must be an integer"),
        ("100,100,-1,0,10,10", "sx and sy must be >= 0"),
        ("100,100,0,0,0,10", "must not be 0"),
    ],
)
def test_invalid_viewport_parameters_are_refused_with_a_reason(text, message):
    with pytest.raises(RenderingParameterError, match=message):
        parse_viewport_parameter(text)


def test_quality_parameter_is_parsed_and_bounded():
    assert parse_quality_parameter("75") == 75
    for text in ("0", "101", "high", "7.5"):
        with pytest.raises(RenderingParameterError, match="quality"):
            parse_quality_parameter(text)


def test_options_are_built_from_query_parameters():
    options = RenderOptions.from_query_parameters(
        {
            "window": "-600,1500,linear",
            "viewport": "256,256,0,0,128,128",
            "quality": "60",
            "annotation": "patient",
        },
        media_type="image/png",
        frame_index=2,
    )
    assert options == RenderOptions(
        window=(-600.0, 1500.0),
        window_function=VoiLutFunction.LINEAR,
        viewport=(256, 256),
        source_region=SourceRegion(0, 0, 128, 128),
        media_type="image/png",
        quality=60,
        frame_index=2,
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {"media_type": "image/gif"},
        {"quality": 0},
        {"frame_index": -1},
        {"window": (0, 0)},
        {"viewport": (0, 10)},
    ],
)
def test_render_options_refuse_invalid_values(arguments):
    with pytest.raises(RenderingParameterError):
        RenderOptions(**arguments)


# --- presets -------------------------------------------------------------------------------------


def test_window_presets_hold_the_usual_ct_windows():
    assert WINDOW_PRESETS["lung"] == (-600, 1500)
    assert WINDOW_PRESETS["mediastinum"] == (40, 400)
    assert WINDOW_PRESETS["bone"] == (400, 1800)
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert WINDOW_PRESETS["abdomen"] == (60, 400)


@pytest.mark.parametrize(
    ("modality", "body_part", "expected"),
    [
        ("CT", "HEAD", (40, 80)),
        ("CT", "chest", (40, 400)),
        ("CT", "ABDOMEN", (60, 400)),
        ("CT", "LSPINE", (400, 1800)),
        ("CT", None, WINDOW_PRESETS["soft_tissue"]),
        ("MR", "HEAD", None),
        (None, None, None),
    ],
)
def test_default_window_depends_on_modality_and_body_part(modality, body_part, expected):
    assert default_window_for(modality, body_part) == expected
