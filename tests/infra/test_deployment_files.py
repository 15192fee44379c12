"""The deployment files agree with the code: they parse, their services are health-checked, and every
environment variable they set is one something actually reads. No database needed."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenants.deployment import SHARED_QUEUES, DedicatedCloudPolicy

REPOSITORY = Path(__file__).resolve().parents[2]
INFRA = REPOSITORY / "infra"
COMPOSE_FILE = INFRA / "compose.yaml"
K8S = INFRA / "k8s"
START_SCRIPTS = INFRA / "start"

SETTINGS_READ = re.compile(
    r"""(?:env_str|env_bool|env_int|env_list|os\.environ\.get|os\.getenv|setdefault)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)
SHELL_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
# Read by the images and tools we run, not by our code.
READ_BY_OTHER_TOOLS = frozenset({
    "DJANGO_SETTINGS_MODULE",  # Django and Celery: which settings module to load
    "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD",  # the postgres image
    "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",  # the minio image and the bucket set-up job
})


def names_read_by_settings() -> set[str]:
    names: set[str] = set()
    for path in (REPOSITORY / "config" / "settings").glob("*.py"):
        for match in SETTINGS_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def names_read_by_start_scripts() -> set[str]:
    return {name for path in START_SCRIPTS.glob("*.sh") for name in SHELL_READ.findall(path.read_text())}


KNOWN_VARIABLES = frozenset(names_read_by_settings() | names_read_by_start_scripts() | READ_BY_OTHER_TOOLS)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the "KEY=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


def is_one_off_job(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "")) == "no"


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield path, document


def k8s_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("kind") not in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        return []
    return list(document["spec"]["template"]["spec"]["containers"])


def k8s_variable_names(document: dict[str, Any]) -> set[str]:
    """Variables a manifest puts into a container: env entries, and ConfigMap/Secret keys (envFrom)."""
    names = {entry["name"] for container in k8s_containers(document) for entry in container.get("env", [])}
    if document.get("kind") == "ConfigMap":
        names |= set(document.get("data") or {})
    if document.get("kind") == "Secret":
        names |= set(document.get("stringData") or {}) | set(document.get("data") or {})
    return names


def container_variable(container: dict[str, Any], name: str) -> str | None:
    return next((entry.get("value") for entry in container.get("env", []) if entry["name"] == name), None)


# --- settings scan (the check below is only as good as this) ----------------------------------------

def test_the_settings_scan_finds_the_documented_variables() -> None:
    documented = {"DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "STORAGE_ROOT", "S3_ENDPOINT_URL",
                  "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_BUCKET", "SECRET_KEY", "ALLOWED_HOSTS"}
    assert documented <= names_read_by_settings()


def test_start_scripts_read_port_and_queues() -> None:
    assert {"PORT", "QUEUES"} <= names_read_by_start_scripts()


# --- compose -----------------------------------------------------------------------------------------

def test_compose_runs_databases_storage_web_beat_migrate_and_a_worker_per_shared_queue() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "minio", "web", "beat", "migrate"} <= set(services)
    worker_queues = sorted(
        compose_environment(service)["QUEUES"] for name, service in services.items() if name.startswith("worker-")
    )
    assert worker_queues == sorted(SHARED_QUEUES)


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        if is_one_off_job(service):
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test, f"compose service {name!r} has no healthcheck"


def test_compose_dependencies_wait_for_health_or_completion_that_can_happen() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            condition = rule.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"
            if condition == "service_completed_successfully":
                assert is_one_off_job(services[dependency]), f"{name} waits for {dependency} to finish"


@pytest.mark.parametrize("service_name", sorted(compose()["services"]))
def test_compose_sets_only_variables_that_are_read(service_name: str) -> None:
    unknown = set(compose_environment(compose()["services"][service_name])) - KNOWN_VARIABLES
    assert not unknown, f"compose service {service_name!r} sets variables nothing reads: {sorted(unknown)}"


def test_compose_start_scripts_exist() -> None:
    for name, service in compose()["services"].items():
        for part in service.get("command") or []:
            if isinstance(part, str) and part.startswith("infra/start/"):
                assert (REPOSITORY / part).is_file(), f"{name} runs missing {part}"


def test_every_variable_compose_interpolates_is_in_the_env_example() -> None:
    example = {
        line.split("=", 1)[0] for line in (INFRA / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert interpolated <= example


# --- Kubernetes ----------------------------------------------------------------------------------------

def test_every_kubernetes_file_parses_and_names_its_kind() -> None:
    documents = list(k8s_documents())
    assert documents
    for path, document in documents:
        assert document.get("kind"), f"{path} has a document without a kind"


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")), ids=lambda path: str(path.relative_to(K8S)))
def test_kubernetes_manifests_set_only_variables_that_are_read(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document is None:
            continue
        unknown = k8s_variable_names(document) - KNOWN_VARIABLES
        assert not unknown, f"{path.name} sets variables nothing reads: {sorted(unknown)}"


def test_kustomizations_list_only_files_that_exist() -> None:
    for path, document in k8s_documents():
        if document.get("kind") != "Kustomization":
            continue
        for resource in document.get("resources", []):
            assert (path.parent / resource).exists(), f"{path} lists missing {resource}"


def test_every_deployment_container_has_a_liveness_probe_and_web_a_readiness_probe() -> None:
    for path, document in k8s_documents():
        if document.get("kind") != "Deployment":
            continue
        for container in k8s_containers(document):
            assert "livenessProbe" in container, f"{path.name}: {container['name']} has no liveness probe"
            if container["name"] == "web":
                probe = container["readinessProbe"]["httpGet"]
                assert probe["path"] == "/readyz"
                # django-tenants routes by Host: a probe without it would hit no tenant.
                assert any(header["name"] == "Host" for header in probe["httpHeaders"])


def test_the_kubernetes_base_has_one_worker_per_shared_queue() -> None:
    queues: list[str] = []
    for path, document in k8s_documents():
        if path.parent.name == "base" and document.get("kind") == "Deployment":
            for container in k8s_containers(document):
                if container["name"] == "worker":
                    queues.append(container_variable(container, "QUEUES") or "")
    assert sorted(queues) == sorted(SHARED_QUEUES)


def test_the_dedicated_hospital_worker_consumes_the_queues_the_deployment_policy_names() -> None:
    overlay = K8S / "overlays" / "dedicated-hospital"
    workers = [
        (document, container) for path, document in k8s_documents() if path.parent == overlay
        for container in k8s_containers(document) if container["name"] == "worker"
    ]
    assert len(workers) == 1
    document, container = workers[0]
    slug = document["metadata"]["labels"]["imaging-cloud/tenant"]
    policy = DedicatedCloudPolicy(tenant_slug=slug, bucket="", endpoint_url=None, kms_key_id=None)
    assert container_variable(container, "QUEUES") == ",".join(policy.queues())


# --- Dockerfile and start scripts ----------------------------------------------------------------------

def test_the_dockerfile_is_multi_stage_and_runs_production_settings_as_a_non_root_user() -> None:
    dockerfile = (REPOSITORY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert len(stages) >= 2 and stages[-1].startswith("python:3.11")
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in final_stage
    assert "infra/start/web.sh" in final_stage
    assert "gunicorn config.wsgi:application" in (START_SCRIPTS / "web.sh").read_text()


@pytest.mark.parametrize("script", sorted(START_SCRIPTS.glob("*.sh")), ids=lambda path: path.name)
def test_start_scripts_hand_their_process_over_with_exec(script: Path) -> None:
    # With exec the server itself receives SIGTERM from Docker, Kubernetes or the launcher.
    last_command = [line for line in script.read_text().splitlines() if line and not line.startswith((" ", "#"))][-1]
    assert last_command.startswith("exec ")


@pytest.mark.parametrize("script", sorted(INFRA.rglob("*.sh")), ids=lambda path: str(path.relative_to(INFRA)))
def test_shell_scripts_are_valid_bash(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


# --- the README's two commands -------------------------------------------------------------------------

def readme_code_blocks() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text()
    return [block.strip() for block in re.findall(r"^```[a-z]*\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)]


def test_the_readme_shows_exactly_the_two_set_up_commands() -> None:
    assert readme_code_blocks() == ["bash infra/run.sh", "bash infra/test.sh"]


def test_run_sh_installs_then_runs_the_launcher() -> None:
    script = (INFRA / "run.sh").read_text()
    assert "source infra/venv.sh" in script
    assert script.rstrip().splitlines()[-1] == 'exec .venv/bin/python -m launcher "$@"'


def test_test_sh_installs_starts_the_test_services_then_runs_pytest_with_the_given_arguments() -> None:
    script = (INFRA / "test.sh").read_text()
    assert script.index("source infra/venv.sh") < script.index("bash infra/services.sh")
    assert script.rstrip().splitlines()[-1] == 'exec .venv/bin/python -m pytest "$@"'


def test_the_shared_venv_step_installs_the_project_with_dev_extras() -> None:
    assert "pip install --quiet --disable-pip-version-check -e '.[dev]'" in (INFRA / "venv.sh").read_text()
