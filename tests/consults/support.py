"""Scenario helpers for consult tests: a study in the clinic, a consult moved along the workflow."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.dicomweb import Study, ct_study, stow
from tests.support.platform import wait_until

CONSULTS = "/api/v1/consults/"
RADIOLOGIST = "radiologist-user"


def clinic_study(platform: Any, slices: int = 3) -> Study:
    study = ct_study(slices, size=64)
    response = stow(platform.http("clinic_a", "technologist"), study.files)
    assert response.status_code == 200, response.text
    return study


def consult_request(platform: Any, study: Study, *, priority: str = "routine", submit: bool = True,
                    tenant: str = "clinic_a", hospital: str = "test-hospital-b", **headers: str) -> Any:
    return platform.http(tenant, "referring_physician").post(CONSULTS, json={
        "study_instance_uids": [study.study_instance_uid], "hospital": hospital,
        "clinical_question": "Cough for 6 weeks; nodule?", "relevant_history": "Smoker, 30 pack-years.",
        "priority": priority, "submit": submit,
    }, headers=headers)


def act(platform: Any, tenant: str, role: str, consult_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
    return platform.http(tenant, role).post(f"{CONSULTS}{consult_id}/{action}/", json=body or {})


def consult_in_reading(platform: Any, study: Study) -> str:
    """A submitted consult accepted, assigned to and claimed by the test radiologist."""
    created = consult_request(platform, study)
    assert created.status_code == 201, created.text
    consult_id = created.json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "assign",
               {"radiologist": RADIOLOGIST}).status_code == 200
    claimed = act(platform, "hospital_b", "radiologist", consult_id, "claim")
    assert claimed.status_code == 200, claimed.text
    return consult_id


def write_report(platform: Any, consult_id: str, key_images: list[str] | None = None, **fields: Any) -> Any:
    body = {"findings": "A 9 mm solid nodule in the right upper lobe.", "impression": "Indeterminate nodule.",
            "recommendations": "CT follow-up in 3 months.", "key_image_sop_instance_uids": key_images or [], **fields}
    return act(platform, "hospital_b", "radiologist", consult_id, "report", body)


def consult_state(platform: Any, consult_id: str, tenant: str = "clinic_a", role: str = "referring_physician") -> Any:
    return platform.http(tenant, role).get(f"{CONSULTS}{consult_id}/").json()


def wait_for_state(platform: Any, consult_id: str, state: str, timeout: float = 90.0) -> dict[str, Any]:
    return wait_until(lambda: (body := consult_state(platform, consult_id)).get("state") == state and body,
                      timeout=timeout, message=f"consult {consult_id} to be {state}")


class Receiver:
    """A small HTTP server on loopback that records what it receives and answers with `status`
    (and `body`, if given)."""

    def __init__(self, status: int = 204, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
