"""Top-level actions that store objects refuse to run nested in another transaction
(`transaction.atomic(durable=True)`, docs/architecture.md "The workflow mechanism"): an outer
transaction that rolled back would leave objects in storage that no row names."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from apps.ai.services.results import _job_complete
from apps.audit.services import Actor
from apps.consults.delivery import consult_deliver
from apps.consults.services import report_sign
from apps.films.models import Film, FilmState
from apps.films.services import film_render

TOP_LEVEL_ACTIONS = {
    "film_render": lambda: film_render(film_id=0),
    "ai_job_results_store": lambda: _job_complete(uuid.uuid4(), source_series_uid="1.2", summary={}, payloads=[]),
    "consult_deliver": lambda: consult_deliver(route_id=uuid.uuid4()),
    "report_sign": lambda: report_sign(route_id=uuid.uuid4(), actor=Actor.system("test"), radiologist="nobody"),
}


@pytest.mark.parametrize("action", TOP_LEVEL_ACTIONS.values(), ids=TOP_LEVEL_ACTIONS.keys())
def test_a_top_level_action_refuses_to_run_inside_another_transaction(platform, action):
    with platform.schema("clinic_a"), transaction.atomic():
        with pytest.raises(RuntimeError, match="durable atomic block cannot be nested"):
            action()


def test_a_film_render_nested_in_a_transaction_renders_nothing(platform):
    with platform.schema("clinic_a"):
        film = Film.objects.create(study_instance_uid="1.2.3", layout="1x1", requested_by="test")
        with transaction.atomic(), pytest.raises(RuntimeError):
            film_render(film_id=film.pk)

        assert (Film.objects.get(pk=film.pk).state, Film.objects.get(pk=film.pk).sheets_pdf_key) == (FilmState.QUEUED, "")
