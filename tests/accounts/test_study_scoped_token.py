"""A study-scoped token (an AI vendor's job token) reaches DICOMweb for its one study only."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from apps.accounts.services import token_issue
from tests.support.dicomweb import ct_study, stow


@pytest.fixture(scope="module")
def scoped(platform):
    own, other = ct_study(2, size=32), ct_study(1, size=32)
    uploader = platform.http("clinic_a", "technologist")
    assert stow(uploader, own.files).status_code == 200
    assert stow(uploader, other.files).status_code == 200
    with platform.schema("clinic_a"):
        user = User.objects.get(username="technologist-user")
        secret = token_issue(user=user, name="vendor job", study_instance_uid_scope=own.study_instance_uid).secret
    return platform.http("clinic_a", token=secret), own, other


def test_it_reads_its_own_study(scoped):
    http, own, _ = scoped
    response = http.get(f"/dicomweb/studies/{own.study_instance_uid}/metadata")
    assert response.status_code == 200
    assert len(response.json()) == 2


def test_it_stores_into_its_own_study(scoped):
    http, own, _ = scoped
    extra = ct_study(1, size=32, study_instance_uid=own.study_instance_uid, patient_id=own.patient_id)
    assert stow(http, extra.files, study=own.study_instance_uid).status_code == 200


def test_another_study_is_out_of_scope(scoped):
    http, _, other = scoped
    response = http.get(f"/dicomweb/studies/{other.study_instance_uid}/metadata")
    assert response.status_code == 403
    assert response.json()["code"] == "token_out_of_scope"


def test_searching_or_storing_across_studies_is_out_of_scope(scoped):
    http, own, _ = scoped
    assert http.get("/dicomweb/studies").status_code == 403
    assert stow(http, ct_study(1, size=16).files).status_code == 403


def test_the_rest_api_refuses_it(scoped):
    http, _, _ = scoped
    assert http.get("/api/v1/me/").status_code == 401
