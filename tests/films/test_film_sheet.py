"""Film sheets (plain DICOM module): window choice, rendering of known pixel values, grid layout,
annotations, PDF."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from apps.dicom.film_sheet import (
    HEADER_HEIGHT,
    SHEET_SIZE,
    FilmImage,
    Layout,
    SheetHeader,
    compose_sheets,
    film_image,
    film_window,
    patient_age,
    sheet_cells,
    sheets_pdf,
)


def _image(values: list[list[int]], *, signed: bool = True, photometric: str = "MONOCHROME2",
           intercept: float = -1024.0, **attributes: object) -> Dataset:
    pixels = np.array(values, dtype=np.int16 if signed else np.uint16)
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID, dataset.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", generate_uid()
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 1 if signed else 0
    dataset.RescaleSlope, dataset.RescaleIntercept = 1, intercept
    dataset.PixelData = pixels.tobytes()
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return dataset


def test_the_objects_own_window_is_used_first():
    dataset = _image([[0]], WindowCenter=300, WindowWidth=1500, BodyPartExamined="CHEST")
    assert film_window(dataset) == (300.0, 1500.0)


def test_a_ct_without_a_window_gets_the_body_parts_preset():
    assert film_window(_image([[0]], BodyPartExamined="CHEST")) == (40, 400)
    assert film_window(_image([[0]], BodyPartExamined="HEAD")) == (40, 80)


def test_an_mr_without_a_window_uses_the_full_range():
    dataset = _image([[0]], signed=False, intercept=0)
    dataset.Modality = "MR"
    assert film_window(dataset) is None


def test_rescaled_signed_values_are_windowed_in_hounsfield_units():
    # stored -1024, 0, 1024, 2048 with intercept -1024 → HU -2048, -1024, 0, 1024; window C 0 W 100
    dataset = _image([[-1024, 0], [1024, 2048]], WindowCenter=0, WindowWidth=100)
    pixels = film_image(dataset).pixels
    assert pixels[0, 0] == 0 and pixels[0, 1] == 0
    assert 120 <= pixels[1, 0] <= 135
    assert pixels[1, 1] == 255


def test_monochrome1_is_printed_inverted():
    values = [[-1024, 0], [1024, 2048]]
    normal = film_image(_image(values, WindowCenter=0, WindowWidth=100)).pixels
    inverted = film_image(_image(values, photometric="MONOCHROME1", WindowCenter=0, WindowWidth=100)).pixels
    assert np.array_equal(inverted.astype(int), 255 - normal.astype(int))


def test_patient_age_is_read_or_computed():
    assert patient_age(_image([[0]], PatientAge="054Y")) == "54Y"
    assert patient_age(_image([[0]], PatientBirthDate="19700615", StudyDate="20260614")) == "55Y"
    assert patient_age(_image([[0]])) == ""


@pytest.mark.parametrize(("layout", "count"), [(Layout.ONE, 1), (Layout.FOUR, 4), (Layout.TWELVE, 12),
                                               (Layout.TWENTY, 20)])
def test_each_layout_has_its_grid_of_cells_inside_the_sheet(layout, count):
    cells = sheet_cells(layout)
    assert len(cells) == count
    for left, top, width, height in cells:
        assert left >= 0 and top >= HEADER_HEIGHT
        assert left + width <= SHEET_SIZE[0] and top + height <= SHEET_SIZE[1]


def _film_images(count: int, spacing: tuple[float, float] | None = (0.7, 0.7)) -> list[FilmImage]:
    return [FilmImage(pixels=np.full((64, 64), 128, dtype=np.uint8), series_number="2",
                      instance_number=str(number), window=(40.0, 400.0), pixel_spacing_mm=spacing)
            for number in range(1, count + 1)]


HEADER = SheetHeader(institution="Clinic", patient_name="DOE JANE", patient_id="P1", patient_sex="F",
                     patient_age="54Y", study_date="2026-01-15", study_description="CT CHEST")


def test_images_fill_as_many_sheets_as_the_layout_needs():
    assert len(compose_sheets(_film_images(9), HEADER, Layout.FOUR)) == 3
    assert len(compose_sheets(_film_images(20), HEADER, Layout.TWENTY)) == 1


def test_a_sheet_prints_the_header_and_each_cells_annotations():
    sheet = np.asarray(compose_sheets(_film_images(4), HEADER, Layout.FOUR)[0])
    blank_header = SheetHeader("", "", "", "", "", "", "")
    unlabelled = np.asarray(compose_sheets(_film_images(4), blank_header, Layout.FOUR)[0])
    assert (sheet[:HEADER_HEIGHT] > 200).sum() > (unlabelled[:HEADER_HEIGHT] > 200).sum() + 500
    left, top, width, height = sheet_cells(Layout.FOUR)[0]
    # series/instance numbers (top left) and W/L (bottom left) are drawn in white over the black margin
    assert (sheet[top + 4:top + 40, left + 4:left + 200] > 200).any()
    assert (sheet[top + height - 45:top + height - 2, left + 4:left + 200] > 200).any()


def test_the_scale_bar_is_drawn_only_with_a_pixel_spacing():
    with_spacing = np.asarray(compose_sheets(_film_images(1), HEADER, Layout.ONE)[0])
    without = np.asarray(compose_sheets(_film_images(1, spacing=None), HEADER, Layout.ONE)[0])
    left, top, width, height = sheet_cells(Layout.ONE)[0]
    corner = (slice(top + height - 70, top + height - 2), slice(left + width - width // 3, left + width - 2))
    assert (with_spacing[corner] > 200).sum() > 100
    assert (without[corner] > 200).sum() == 0


def test_the_printable_pdf_has_one_page_per_sheet():
    pdf = sheets_pdf(compose_sheets(_film_images(6), HEADER, Layout.FOUR))
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 2
