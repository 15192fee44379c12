"""An uploaded file's and a resumable transfer's states move only through their transition tables
(apps/uploads/workflow.py): a file finished twice (two workers, or a redelivered message) counts once
in its session, and a finished file cannot be refused afterwards."""

from __future__ import annotations

import pytest

from apps.core.workflow import InvalidTransition
from apps.uploads.models import UploadFile, UploadFileStatus, UploadSession, UploadTransferStatus
from apps.uploads.services import _finish_file
from apps.uploads.workflow import UPLOAD_FILE_WORKFLOW, UPLOAD_TRANSFER_WORKFLOW
from tests.support.dicomweb import ct_study
from tests.uploads.test_upload_sessions import open_session, send_file


def test_the_tables_name_every_state_of_their_model():
    assert UPLOAD_FILE_WORKFLOW.states == set(UploadFileStatus.values)
    assert UPLOAD_TRANSFER_WORKFLOW.states == set(UploadTransferStatus.values)


def test_a_file_finished_twice_counts_once_and_cannot_then_be_refused(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    assert send_file(http, session["id"], "one.dcm", ct_study(1).files[0]).status_code == 201
    with platform.schema("clinic_a"):
        first = UploadFile.objects.get(session_id=session["id"])
        second = UploadFile.objects.get(pk=first.pk)  # what a second worker read before either moved it
        _finish_file(first, "finish")
        _finish_file(second, "finish")
        assert UploadSession.objects.get(pk=session["id"]).files_done == 1
        assert UploadFile.objects.get(pk=first.pk).status == UploadFileStatus.DONE
        with pytest.raises(InvalidTransition):
            UPLOAD_FILE_WORKFLOW.target(UploadFileStatus.DONE, "refuse")
