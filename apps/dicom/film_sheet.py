"""Film sheets: key images in a standard grid with the annotations printed film carries.

Plain Python (pydicom, numpy, Pillow); no Django. The window of each image is the one a film
technologist would print with: the object's own Window Center/Width (PS3.3 §C.11.2.1.2), else a
preset for the modality and body part (CT), else the full range of the stored values.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from apps.dicom.rendering import RenderOptions, render_frame_array
from apps.dicom.window_presets import default_window_for

SHEET_SIZE = (1700, 2200)  # pixels of one sheet: portrait, 8.5 × 11 in at 200 dpi
HEADER_HEIGHT = 120
CELL_GAP = 8
PRINT_DPI = 200


class Layout(StrEnum):
    ONE = "1x1"
    FOUR = "2x2"
    TWELVE = "3x4"
    TWENTY = "4x5"

    @property
    def grid(self) -> tuple[int, int]:
        """(columns, rows)."""
        columns, rows = self.value.split("x")
        return int(columns), int(rows)

    @property
    def capacity(self) -> int:
        columns, rows = self.grid
        return columns * rows


LAYOUTS: tuple[str, ...] = tuple(layout.value for layout in Layout)


@dataclass(frozen=True)
class SheetHeader:
    institution: str
    patient_name: str
    patient_id: str
    patient_sex: str
    patient_age: str
    study_date: str
    study_description: str

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> SheetHeader:
        return cls(
            institution=str(dataset.get("InstitutionName", "") or ""),
            patient_name=str(dataset.get("PatientName", "") or "").replace("^", " ").strip(),
            patient_id=str(dataset.get("PatientID", "") or ""),
            patient_sex=str(dataset.get("PatientSex", "") or ""),
            patient_age=patient_age(dataset),
            study_date=_dicom_date_text(str(dataset.get("StudyDate", "") or "")),
            study_description=str(dataset.get("StudyDescription", "") or ""),
        )


@dataclass(frozen=True)
class FilmImage:
    """One rendered image and what is printed around it."""

    pixels: np.ndarray  # uint8, (rows, columns) or (rows, columns, 3)
    series_number: str
    instance_number: str
    window: tuple[float, float] | None  # printed as W/L; None = full range
    pixel_spacing_mm: tuple[float, float] | None  # (row spacing, column spacing)


def patient_age(dataset: Dataset) -> str:
    """Patient's Age (0010,1010) as printed (e.g. "054Y" → "54Y"), else computed from birth and study dates."""
    age = str(dataset.get("PatientAge", "") or "")
    if len(age) == 4 and age[:3].isdigit():
        return f"{int(age[:3])}{age[3]}"
    birth, study = _parse_date(str(dataset.get("PatientBirthDate", "") or "")), _parse_date(
        str(dataset.get("StudyDate", "") or ""))
    if birth and study and study >= birth:
        years = study.year - birth.year - ((study.month, study.day) < (birth.month, birth.day))
        return f"{years}Y"
    return ""


def film_window(dataset: Dataset) -> tuple[float, float] | None:
    """The window a film prints this image with (see the module docstring)."""
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is not None and width is not None:
        first_center = center[0] if _is_multi(center) else center
        first_width = width[0] if _is_multi(width) else width
        if float(first_width) >= 1:
            return float(first_center), float(first_width)
    return default_window_for(str(dataset.get("Modality", "")), str(dataset.get("BodyPartExamined", "")))


def film_image(dataset: Dataset, *, window: tuple[float, float] | None = None) -> FilmImage:
    chosen = window if window is not None else film_window(dataset)
    pixels = render_frame_array(dataset, RenderOptions(window=chosen))
    spacing = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    return FilmImage(
        pixels=pixels,
        series_number=str(dataset.get("SeriesNumber", "") or ""),
        instance_number=str(dataset.get("InstanceNumber", "") or ""),
        window=chosen,
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])) if spacing else None,
    )


def compose_sheets(images: Sequence[FilmImage], header: SheetHeader, layout: Layout) -> list[Image.Image]:
    """The images in `layout`, as many sheets as needed, in order."""
    if not images:
        raise ValueError("A film needs at least one image.")
    per_sheet = layout.capacity
    pages = [images[start:start + per_sheet] for start in range(0, len(images), per_sheet)]
    return [_sheet(page, header, layout, number, len(pages)) for number, page in enumerate(pages, start=1)]


def sheet_cells(layout: Layout) -> list[tuple[int, int, int, int]]:
    """(left, top, width, height) of each cell of a sheet, row by row."""
    columns, rows = layout.grid
    width = (SHEET_SIZE[0] - CELL_GAP * (columns + 1)) // columns
    height = (SHEET_SIZE[1] - HEADER_HEIGHT - CELL_GAP * (rows + 1)) // rows
    return [(CELL_GAP + column * (width + CELL_GAP), HEADER_HEIGHT + CELL_GAP + row * (height + CELL_GAP), width, height)
            for row in range(rows) for column in range(columns)]


def sheet_jpeg(sheet: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def sheets_pdf(sheets: Sequence[Image.Image]) -> bytes:
    """A printable PDF, one page per sheet, at PRINT_DPI."""
    buffer = io.BytesIO()
    first, *rest = [sheet.convert("RGB") for sheet in sheets]
    first.save(buffer, format="PDF", save_all=True, append_images=rest, resolution=PRINT_DPI)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _sheet(images: Sequence[FilmImage], header: SheetHeader, layout: Layout, number: int, total: int) -> Image.Image:
    sheet = Image.new("L", SHEET_SIZE, 0)
    draw = ImageDraw.Draw(sheet)
    big, small = _font(34), _font(24)
    draw.text((CELL_GAP * 2, 14), f"{header.patient_name}   ID {header.patient_id}   "
              f"{header.patient_sex} {header.patient_age}".strip(), fill=255, font=big)
    draw.text((CELL_GAP * 2, 62), f"{header.institution}   {header.study_date}   {header.study_description}",
              fill=220, font=small)
    draw.text((SHEET_SIZE[0] - 200, 62), f"{number} / {total}", fill=220, font=small)
    cell_font = _font(max(16, min(28, sheet_cells(layout)[0][2] // 24)))
    for image, (left, top, width, height) in zip(images, sheet_cells(layout), strict=False):
        _place(sheet, draw, image, (left, top, width, height), cell_font)
    return sheet


def _place(sheet: Image.Image, draw: ImageDraw.ImageDraw, image: FilmImage, cell: tuple[int, int, int, int],
           font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    left, top, width, height = cell
    picture = Image.fromarray(image.pixels).convert("L")
    scale = min(width / picture.width, height / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.LANCZOS)
    x, y = left + (width - size[0]) // 2, top + (height - size[1]) // 2
    sheet.paste(picture, (x, y))
    draw.rectangle((left, top, left + width - 1, top + height - 1), outline=90)
    line = int(font.size) + 4 if isinstance(font, ImageFont.FreeTypeFont) else 14
    draw.text((left + 6, top + 4), f"Se {image.series_number}  Im {image.instance_number}", fill=255, font=font)
    if image.window is not None:
        draw.text((left + 6, top + height - line - 4), f"W {image.window[1]:g}  L {image.window[0]:g}", fill=255, font=font)
    if image.pixel_spacing_mm is not None:
        _scale_bar(draw, image, scale, (left, top, width, height), font, line)


def _scale_bar(draw: ImageDraw.ImageDraw, image: FilmImage, scale: float, cell: tuple[int, int, int, int],
               font: ImageFont.FreeTypeFont | ImageFont.ImageFont, line: int) -> None:
    """A horizontal bar of a round length in mm (about a quarter of the cell), with its label."""
    left, top, width, height = cell
    column_spacing = image.pixel_spacing_mm[1] if image.pixel_spacing_mm else 0.0
    if column_spacing <= 0:
        return
    millimetres_per_sheet_pixel = column_spacing / scale
    target = width / 4 * millimetres_per_sheet_pixel
    length_mm = max((value for value in (1, 2, 5, 10, 20, 50, 100, 200) if value <= target), default=1)
    length = round(length_mm / millimetres_per_sheet_pixel)
    right, baseline = left + width - 10, top + height - 12
    draw.line((right - length, baseline, right, baseline), fill=255, width=3)
    for tick in (right - length, right):
        draw.line((tick, baseline - 8, tick, baseline), fill=255, width=3)
    draw.text((right - length, baseline - 10 - line), f"{length_mm} mm", fill=255, font=font)


def _is_multi(value: object) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def _parse_date(text: str) -> date | None:
    if len(text) == 8 and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    return None


def _dicom_date_text(text: str) -> str:
    parsed = _parse_date(text)
    return parsed.isoformat() if parsed else text
