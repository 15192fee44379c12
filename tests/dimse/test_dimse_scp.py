"""The DIMSE listener against real dcmtk peers (echoscu, storescu): association policy per tenant,
storage in the common transfer syntaxes, isolation, and byte-identical retrieval over WADO-RS
(docs/dimse.md)."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from apps.archive.models import Instance
from apps.audit.models import AuditEvent
from apps.dimse.server import dimse_server_start
from tests.support.dicomweb import ct_study, parse_multipart, sample_file_with_new_uids
from tests.support.dimse import called_ae_title, echoscu, free_port, registered_peer, storescu

ORIGINALS = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def dimse_port(platform: Any) -> Iterator[int]:
    port = free_port()
    server = dimse_server_start(address="127.0.0.1", port=port)
    yield port
    server.shutdown()


def _write(tmp_path: Path, files: list[bytes]) -> list[Path]:
    paths = []
    for number, content in enumerate(files):
        path = tmp_path / f"{number:04d}.dcm"
        path.write_bytes(content)
        paths.append(path)
    return paths


def _data_set_bytes(part10: bytes) -> bytes:
    """The bytes after the file meta information: its group length (0002,0000) comes first (PS3.10 §7.1)."""
    assert part10[128:132] == b"DICM"
    (group_length,) = struct.unpack("<I", part10[140:144])
    return part10[144 + group_length:]


def _retrieve(platform: Any, tenant_key: str, dataset: pydicom.Dataset) -> bytes:
    response = platform.http(tenant_key, "clinic_admin" if "clinic" in tenant_key else "hospital_admin").get(
        f"/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}", headers={"Accept": ORIGINALS})
    assert response.status_code == 200, response.text
    [(_, content)] = parse_multipart(response)
    return content


def test_echo_from_a_registered_peer_succeeds_and_is_audited(platform: Any, dimse_port: int) -> None:
    calling = registered_peer(platform, "clinic_a")

    result = echoscu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"))

    assert result.returncode == 0, result.stderr
    with platform.schema("clinic_a"):
        accepted = AuditEvent.objects.filter(action="dimse.association_accept", actor_id=calling)
        assert [(event.client_ip, event.object_id) for event in accepted] == [
            ("127.0.0.1", called_ae_title(platform, "clinic_a"))]


def test_many_instances_in_one_association_are_stored_byte_identical(platform: Any, dimse_port: int,
                                                                      tmp_path: Path) -> None:
    calling = registered_peer(platform, "clinic_a")
    study = ct_study(slices=12)

    result = storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"),
                       files=_write(tmp_path, study.files))

    assert result.returncode == 0, result.stderr
    with platform.schema("clinic_a"):
        stored = Instance.objects.filter(series__study__study_instance_uid=study.study_instance_uid)
        assert sorted(stored.values_list("sop_instance_uid", flat=True)) == sorted(study.sop_instance_uids)
        assert AuditEvent.objects.filter(action="archive.store", actor_id=calling, detail__via="dimse").count() == 12
        assert AuditEvent.objects.filter(action="dimse.association_accept", actor_id=calling).count() == 1
    for dataset, original in zip(study.datasets, study.files, strict=True):
        assert _data_set_bytes(_retrieve(platform, "clinic_a", dataset)) == _data_set_bytes(original)


@pytest.mark.parametrize(("sample", "proposal"), [
    ("JPEG2000.dcm", "-xw"),
    ("MR_small_jp2klossless.dcm", "-xv"),
    ("MR_small_RLE.dcm", "-xr"),
    ("MR_small_jpeg_ls_lossless.dcm", "-xt"),
    ("SC_rgb_jpeg_dcmtk.dcm", "-xy"),
    ("JPEG-lossy.dcm", "-xx"),
])
def test_compressed_instances_are_stored_in_their_transfer_syntax_as_sent(
        platform: Any, dimse_port: int, tmp_path: Path, sample: str, proposal: str) -> None:
    calling = registered_peer(platform, "clinic_a")
    original = sample_file_with_new_uids(sample)
    dataset = pydicom.dcmread(pydicom.filebase.DicomBytesIO(original))

    result = storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"),
                       files=_write(tmp_path, [original]), options=(proposal,))

    assert result.returncode == 0, result.stderr + result.stdout
    # dcmtk re-encodes some of the header it sends; the compressed pixel data travel untouched.
    retrieved = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_retrieve(platform, "clinic_a", dataset)))
    assert retrieved.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
    assert retrieved.PixelData == dataset.PixelData


@pytest.mark.parametrize(("proposal", "transfer_syntax"), [
    ("-xi", pydicom.uid.ImplicitVRLittleEndian),
    ("-xd", pydicom.uid.DeflatedExplicitVRLittleEndian),
])
def test_uncompressed_instances_are_stored_in_the_negotiated_transfer_syntax(
        platform: Any, dimse_port: int, tmp_path: Path, proposal: str, transfer_syntax: str) -> None:
    calling = registered_peer(platform, "clinic_a")
    study = ct_study(slices=2)

    result = storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"),
                       files=_write(tmp_path, study.files), options=(proposal,))

    assert result.returncode == 0, result.stderr
    for dataset in study.datasets:
        retrieved = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_retrieve(platform, "clinic_a", dataset)))
        assert retrieved.file_meta.TransferSyntaxUID == transfer_syntax
        assert retrieved.PixelData == dataset.PixelData


def test_several_associations_store_into_the_same_study(platform: Any, dimse_port: int, tmp_path: Path) -> None:
    calling = registered_peer(platform, "clinic_a")
    study = ct_study(slices=6)
    paths = _write(tmp_path, study.files)

    for half in (paths[:3], paths[3:]):
        assert storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"), files=half).returncode == 0

    with platform.schema("clinic_a"):
        assert Instance.objects.filter(series__study__study_instance_uid=study.study_instance_uid).count() == 6
        assert AuditEvent.objects.filter(action="dimse.association_accept", actor_id=calling).count() == 2


def _rejection(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_an_unknown_called_ae_title_is_rejected(platform: Any, dimse_port: int) -> None:
    calling = registered_peer(platform, "clinic_a")

    output = _rejection(echoscu(dimse_port, calling=calling, called="NO-SUCH-TENANT"))

    assert "Called AE Title Not Recognized" in output
    with platform.schema():
        assert AuditEvent.objects.filter(action="dimse.association_reject", actor_id=calling,
                                         detail__reason="unknown_called_ae_title").count() == 1


def test_an_unregistered_calling_ae_title_is_rejected(platform: Any, dimse_port: int) -> None:
    output = _rejection(echoscu(dimse_port, calling="UNREGISTERED", called=called_ae_title(platform, "clinic_a")))

    assert "Calling AE Title Not Recognized" in output
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="dimse.association_reject", actor_id="UNREGISTERED",
                                         detail__reason="unknown_calling_ae_title").exists()


def test_a_registered_ae_title_from_another_address_is_rejected(platform: Any, dimse_port: int) -> None:
    calling = registered_peer(platform, "clinic_a", host="192.0.2.10")

    output = _rejection(echoscu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a")))

    assert "Calling AE Title Not Recognized" in output
    with platform.schema("clinic_a"):
        [event] = AuditEvent.objects.filter(action="dimse.association_reject", actor_id=calling)
        assert (event.client_ip, event.detail["reason"]) == ("127.0.0.1", "peer_address_not_registered")


def test_a_suspended_tenant_rejects_associations_until_activated(platform: Any, dimse_port: int) -> None:
    from tenants.services import tenant_activate, tenant_suspend

    calling = registered_peer(platform, "clinic_c")
    slug = platform.tenants["clinic_c"].slug
    with platform.schema():
        tenant_suspend(slug=slug, reason="test")
    try:
        output = _rejection(echoscu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_c")))
    finally:
        with platform.schema():
            tenant_activate(slug=slug)

    assert "Rejected Transient" in output
    assert echoscu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_c")).returncode == 0


def test_a_tenants_ae_title_never_stores_into_another_tenants_archive(platform: Any, dimse_port: int,
                                                                      tmp_path: Path) -> None:
    calling = registered_peer(platform, "clinic_a")
    study = ct_study(slices=2)

    assert storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a"),
                     files=_write(tmp_path, study.files)).returncode == 0
    # The peer is clinic A's: calling clinic C's AE title is refused, nothing reaches C.
    assert storescu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_c"),
                     files=_write(tmp_path, study.files)).returncode != 0

    with platform.schema("clinic_c"):
        assert not Instance.objects.filter(series__study__study_instance_uid=study.study_instance_uid).exists()
    with platform.schema("clinic_a"):
        assert Instance.objects.filter(series__study__study_instance_uid=study.study_instance_uid).count() == 2


def test_an_association_that_cannot_be_decided_is_rejected_transient(platform: Any, dimse_port: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.dimse import services

    def unreachable(**_: Any) -> None:
        raise ConnectionError("the database does not answer")

    calling = registered_peer(platform, "clinic_a")
    monkeypatch.setattr(services, "association_admit", unreachable)

    output = _rejection(echoscu(dimse_port, calling=calling, called=called_ae_title(platform, "clinic_a")))

    assert "Rejected Transient" in output
