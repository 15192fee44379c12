"""Rendered resources and thumbnails (PS3.18 §10.4.1.1.3-4): JPEG or PNG, window / viewport / quality
parameters, cached by instance and parameters, revalidated by ETag."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.factories.dicom_factory import make_multiframe, to_part10_bytes
from tests.support.dicomweb import ct_study, mixed_study, parse_multipart, stow, unique_patient_id


@pytest.fixture(scope="module")
def study(platform):
    stored = mixed_study()
    assert stow(platform.http("clinic_a", "technologist"), stored.files).status_code == 200
    return stored


def get(platform, path: str, accept: str = "image/jpeg", params=None, **headers):
    return platform.http("clinic_a", "referring_physician").get(
        f"/dicomweb{path}", params=params, headers={"Accept": accept, **headers}
    )


def instance_path(study, index: int = 0) -> str:
    dataset = study.datasets[index]
    return f"/studies/{study.study_instance_uid}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"


def image(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def test_an_instance_renders_as_jpeg_by_default(platform, study):
    response = get(platform, instance_path(study) + "/rendered", accept="*/*")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert image(response).size == (64, 64)
    assert response.headers["Cache-Control"].startswith("private")


def test_png_is_rendered_when_asked_for(platform, study):
    response = get(platform, instance_path(study) + "/rendered", accept="image/png")
    assert response.headers["Content-Type"] == "image/png"
    assert image(response).format == "PNG"


def test_viewport_window_and_quality_change_the_image(platform, study):
    path = instance_path(study) + "/rendered"
    plain = get(platform, path)
    small = get(platform, path, params={"viewport": "32,32"})
    assert max(image(small).size) <= 32
    windowed = get(platform, path, params={"window": "-600,1500,linear"})
    assert windowed.content != plain.content
    low = get(platform, path, params={"quality": "10"})
    assert len(low.content) < len(plain.content)
    assert len({plain.headers["ETag"], small.headers["ETag"], windowed.headers["ETag"], low.headers["ETag"]}) == 4


def test_a_rendered_image_is_cached_and_revalidated(platform, study):
    path = instance_path(study, 1) + "/rendered"
    first = get(platform, path, params={"window": "40,400"})
    second = get(platform, path, params={"window": "40,400"})
    assert first.content == second.content
    assert first.headers["ETag"] == second.headers["ETag"]
    unchanged = get(platform, path, params={"window": "40,400"}, **{"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304


def test_bad_rendering_parameters_are_a_bad_request(platform, study):
    for params in ({"window": "40"}, {"viewport": "0,10"}, {"quality": "101"}):
        response = get(platform, instance_path(study) + "/rendered", params=params)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_rendering_parameter"


def test_an_image_type_that_cannot_be_rendered_is_406(platform, study):
    response = get(platform, instance_path(study) + "/rendered", accept="image/gif")
    assert response.status_code == 406


def test_one_frame_of_a_multiframe_instance_renders(platform):
    dataset = make_multiframe(number_of_frames=5, rows=32, columns=32, patient_id=unique_patient_id())
    stow(platform.http("clinic_a", "technologist"), [to_part10_bytes(dataset)])
    path = f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"
    second, fifth = get(platform, path + "/frames/2/rendered"), get(platform, path + "/frames/5/rendered")
    assert second.status_code == fifth.status_code == 200
    assert second.content != fifth.content
    assert get(platform, path + "/frames/6/rendered").status_code == 404


def test_a_series_and_a_study_render_every_image_as_multipart(platform, study):
    series = get(platform, f"/studies/{study.study_instance_uid}/series/{study.series_instance_uids[0]}/rendered")
    parts = parse_multipart(series)
    assert len(parts) == 3
    assert all(headers["content-type"] == "image/jpeg" and content[:2] == b"\xff\xd8" for headers, content in parts)
    assert len(parse_multipart(get(platform, f"/studies/{study.study_instance_uid}/rendered"))) == 4


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_thumbnails_show_a_small_image_of_each_level(platform, study, level):
    path = {
        "study": f"/studies/{study.study_instance_uid}",
        "series": f"/studies/{study.study_instance_uid}/series/{study.series_instance_uids[1]}",
        "instance": instance_path(study, 2),
    }[level]
    response = get(platform, path + "/thumbnail")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert max(image(response).size) <= 128
    sized = get(platform, path + "/thumbnail", params={"viewport": "40,40"})
    assert max(image(sized).size) <= 40


def test_a_thumbnail_of_an_unknown_study_is_404(platform):
    assert get(platform, f"/studies/{ct_study(1).study_instance_uid}/thumbnail").status_code == 404
