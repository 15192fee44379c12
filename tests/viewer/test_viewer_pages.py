"""The embedded viewer's page, configuration and assets over HTTP on a tenant domain (docs/viewer.md)."""

from __future__ import annotations

import re
import uuid

from tests.support.tenancy import http_on, session_login
from tests.viewer.support import evaluated_config, viewer_dist

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)
STUDY = "1.2.826.0.1.3680043.8.498.1"


def signed_in(platform, tenant: str, role: str):
    client, answer = session_login(platform, platform.host(tenant), username=f"{role}-user", password=PASSWORD)
    assert answer.status_code == 302, answer.text
    return client


def test_the_viewer_and_its_configuration_send_a_visitor_without_a_session_to_the_sign_in_page(platform):
    client = http_on(platform, platform.host("hospital_b"))
    for path in ("/viewer/", f"/viewer/viewer?StudyInstanceUIDs={STUDY}", "/app-config.js"):
        answer = client.get(path, allow_redirects=False)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/accounts/login/?next=/"), path


def test_every_viewer_route_answers_with_ohifs_own_page_unchanged(platform):
    index = (viewer_dist() / "index.html").read_bytes()
    client = signed_in(platform, "hospital_b", "radiologist")
    for path in ("/viewer/", f"/viewer/viewer?StudyInstanceUIDs={STUDY}",
                 f"/viewer/consults/{uuid.uuid4()}/viewer?StudyInstanceUIDs={STUDY}"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.content == index, path
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"


def test_the_viewer_page_alone_gets_ohifs_content_security_policy(platform):
    viewer_dist()
    client = signed_in(platform, "hospital_b", "radiologist")
    policy = dict(item.strip().split(" ", 1) for item in
                  client.get("/viewer/").headers["Content-Security-Policy"].split(";"))
    script_sources = policy["script-src"].split()
    assert script_sources[:2] == ["'self'", "'wasm-unsafe-eval'"]
    # OHIF's index.html has two inline scripts (PUBLIC_URL and its import helper), allowed by hash only.
    assert len([source for source in script_sources if source.startswith("'sha256-")]) == 2
    assert "'unsafe-inline'" not in script_sources
    assert policy["worker-src"] == "'self' blob:"
    assert policy["frame-ancestors"] == "'none'"
    pages_policy = client.get("/consults/").headers["Content-Security-Policy"]
    assert "wasm-unsafe-eval" not in pages_policy
    assert "worker-src" not in pages_policy


def test_the_configuration_points_a_tenant_page_at_the_tenants_own_root(platform):
    client = signed_in(platform, "clinic_a", "referring_physician")
    answer = client.get("/app-config.js")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Cache-Control"] == "private, no-store"
    config = evaluated_config(answer.text, "/viewer/viewer")
    origin = f"http://{platform.host('clinic_a')}"
    assert config["routerBasename"] == "/viewer"
    assert config["defaultDataSourceName"] == "dicomweb"
    [source] = config["dataSources"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    roots = {key: source["configuration"][key] for key in ("qidoRoot", "wadoRoot", "wadoUriRoot")}
    assert roots == {"qidoRoot": f"{origin}/dicomweb", "wadoRoot": f"{origin}/dicomweb",
                     "wadoUriRoot": f"{origin}/dicomweb"}


def test_the_configuration_points_a_consult_page_at_the_consults_own_root(platform):
    consult_id = uuid.uuid4()
    client = signed_in(platform, "hospital_b", "radiologist")
    config = evaluated_config(client.get("/app-config.js").text, f"/viewer/consults/{consult_id}/viewer")
    origin = f"http://{platform.host('hospital_b')}"
    assert config["routerBasename"] == f"/viewer/consults/{consult_id}"
    [source] = config["dataSources"]
    root = f"{origin}/consults/{consult_id}/dicomweb"
    assert [source["configuration"][key] for key in ("qidoRoot", "wadoRoot", "wadoUriRoot")] == [root, root, root]


def test_a_path_that_is_not_a_consult_id_keeps_the_tenants_root(platform):
    client = signed_in(platform, "hospital_b", "radiologist")
    config = evaluated_config(client.get("/app-config.js").text, "/viewer/consults/../../dicomweb/viewer")
    assert config["routerBasename"] == "/viewer"
    assert config["dataSources"][0]["configuration"]["qidoRoot"] == f"http://{platform.host('hospital_b')}/dicomweb"


def test_ohifs_hashed_assets_are_served_at_the_root_compressed_and_cached_for_a_year(platform):
    dist = viewer_dist()
    index = (dist / "index.html").read_text()
    bundle = re.search(r'src="(/app\.bundle\.[0-9a-f]+\.js)"', index).group(1)
    client = http_on(platform, platform.host("hospital_b"))
    answer = client.get(bundle, headers={"Accept-Encoding": "gzip"}, stream=True)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/javascript")
    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["Cache-Control"] == "max-age=315360000, public, immutable"
    wasm = next(dist.glob("*.wasm")).name
    answer = client.head(f"/{wasm}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/wasm"
    assert "immutable" in answer.headers["Cache-Control"]


def test_ohifs_shipped_demo_configuration_is_never_served(platform):
    viewer_dist()
    answer = signed_in(platform, "hospital_b", "radiologist").get("/app-config.js")
    assert "cloudfront" not in answer.text
    assert "Generated by Imaging Cloud" in answer.text
