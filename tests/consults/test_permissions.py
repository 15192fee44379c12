"""One table says who may take each consult action (apps/consults/permissions.py); the REST API and
the pages both read it, and the viewer presets and non-image modalities are defined once."""

from __future__ import annotations

import re

from apps.accounts.roles import Role
from apps.consults.api.views import ACTIONS
from apps.consults.pages.views import PAGE_ACTIONS
from apps.consults.permissions import ROLES_BY_ACTION, ConsultAction, actions_for_role, role_may
from apps.dicom.window_presets import WINDOW_PRESETS, viewer_window_presets
from tests.consults.support import act, clinic_study, consult_request
from tests.support.tenancy import session_login

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)


def test_every_action_of_the_api_and_the_pages_has_its_roles_in_the_one_table():
    assert set(ACTIONS) | set(PAGE_ACTIONS.values()) <= set(ROLES_BY_ACTION)
    assert set(ROLES_BY_ACTION) == set(ConsultAction)


def test_the_table_gives_triage_to_coordinators_and_reading_to_radiologists():
    assert role_may(Role.CONSULT_COORDINATOR, ConsultAction.ACCEPT)
    assert role_may(Role.HOSPITAL_ADMIN, ConsultAction.ASSIGN)
    assert not role_may(Role.RADIOLOGIST, ConsultAction.ACCEPT)
    assert not role_may(Role.CONSULT_COORDINATOR, ConsultAction.SIGN)
    assert actions_for_role(Role.RADIOLOGIST) == {ConsultAction.RETURN_FOR_INFO, ConsultAction.CLAIM,
                                                  ConsultAction.REPORT, ConsultAction.SIGN, ConsultAction.AMEND,
                                                  ConsultAction.JUDGE_AI_FINDING}


def test_the_viewer_presets_are_the_rendering_windows():
    presets = {name: (center, width) for name, _, center, width in viewer_window_presets()}
    assert presets["abdomen"] == WINDOW_PRESETS["abdomen"] == (60, 400)
    assert list(presets) == ["lung", "mediastinum", "bone", "brain", "abdomen"]


def test_a_radiologist_may_not_accept_through_the_page_and_a_coordinator_may(platform):
    consult_id = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
    host = platform.domains["hospital_b"]
    radiologist, _ = session_login(platform, host, username="radiologist-user", password=PASSWORD)
    page = radiologist.get(f"/consults/{consult_id}/")
    assert page.status_code == 200 and 'id="accept"' not in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    refused = radiologist.post(f"/consults/{consult_id}/accept", data={"csrfmiddlewaretoken": csrf},
                               allow_redirects=False)
    assert refused.status_code == 403
    assert act(platform, "hospital_b", "radiologist", consult_id, "accept").status_code == 403

    coordinator, _ = session_login(platform, host, username="consult_coordinator-user", password=PASSWORD)
    page = coordinator.get(f"/consults/{consult_id}/")
    assert 'id="accept"' in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    accepted = coordinator.post(f"/consults/{consult_id}/accept", data={"csrfmiddlewaretoken": csrf},
                                allow_redirects=False)
    assert accepted.status_code == 302
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "claim").status_code == 403


def test_the_reading_page_offers_the_same_abdomen_window_as_the_patient_film(platform):
    consult_id = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    radiologist, _ = session_login(platform, platform.domains["hospital_b"], username="radiologist-user",
                                   password=PASSWORD)
    page = radiologist.get(f"/consults/{consult_id}/")
    assert page.status_code == 200
    assert 'data-window="60,400">Abdomen</button>' in page.text
    assert 'data-window="50,350"' not in page.text
