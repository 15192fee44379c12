"""The measurements: each phase runs the same client code against one peer and returns a summary.

A phase never decides what is good or bad; it records what happened (timings, answer counts,
statuses, the first few errors) and `bench.report` turns the summaries into figures.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from bench import client
from bench.client import Peer, StowBody
from bench.dataset import BenchDataset, InstanceEntry, SeriesEntry, StudyEntry
from bench.measure import MEBIBYTE, MEGABYTE, Counter, MemorySampler, latency_summary

QUERY_LIMIT = "100"
DATE_RANGE = ("20220101", "20231231")
WILDCARD_NAME = "DOE*"
MAX_ERRORS_KEPT = 5


class Cancelled(Exception):
    pass


# --- data preparation -----------------------------------------------------------------------------------

@dataclass
class IngestPlan:
    bulk_bodies: list[StowBody]  # batches of `batch_size` instances, sent by several clients
    single_bodies: list[StowBody]  # one instance each, sent by one client
    single_study_uids: list[str]


def plan_ingest(dataset: BenchDataset, *, batch_size: int = 50, single_fraction: float = 0.1,
                log: Callable[[str], None] = print) -> IngestPlan:
    """Split the data set by whole studies: ~10% (CT and MR studies) go one instance per request, the
    rest in batches. Bodies are built before any timing starts and reused for both peers."""
    candidates = [study for study in reversed(dataset.studies) if study.modalities in (["CT"], ["MR"])]
    single: list[StudyEntry] = []
    wanted = max(1, round(dataset.instance_count * single_fraction))
    # Alternate CT and MR so the single-instance run sees both frame sizes.
    by_modality = {"CT": [s for s in candidates if s.modalities == ["CT"]],
                   "MR": [s for s in candidates if s.modalities == ["MR"]]}
    for modality in itertools.cycle(["CT", "MR"]):
        if sum(study.instance_count for study in single) >= wanted or not any(by_modality.values()):
            break
        if by_modality[modality]:
            single.append(by_modality[modality].pop(0))
    single_uids = {study.study_instance_uid for study in single}
    bulk_instances: list[InstanceEntry] = []
    single_instances: list[InstanceEntry] = []
    for study, _series, instance in dataset.instances():
        (single_instances if study.study_instance_uid in single_uids else bulk_instances).append(instance)
    log(f"reading {dataset.instance_count} files and building STOW bodies "
        f"({len(bulk_instances)} instances in batches of {batch_size}, {len(single_instances)} one by one) ...")
    bulk_bodies = []
    for start in range(0, len(bulk_instances), batch_size):
        parts = [dataset.path_of(instance).read_bytes() for instance in bulk_instances[start:start + batch_size]]
        bulk_bodies.append(client.stow_body(parts))
    single_bodies = [client.stow_body([dataset.path_of(instance).read_bytes()]) for instance in single_instances]
    return IngestPlan(bulk_bodies, single_bodies, sorted(single_uids))


# --- STOW-RS --------------------------------------------------------------------------------------------

def stow_phase(peer: Peer, bodies: list[StowBody], *, clients: int, cancel: threading.Event) -> dict[str, object]:
    stored_so_far = Counter()
    outcomes: list[client.StowOutcome] = []
    next_body = itertools.count()
    total_instances = sum(body.instances for body in bodies)

    def send_bodies() -> None:
        session = client.new_session(peer)
        try:
            while not cancel.is_set():
                index = next(next_body)
                if index >= len(bodies):
                    return
                outcome = client.stow(session, peer, bodies[index])
                outcomes.append(outcome)
                stored_so_far.add(outcome.stored)
        finally:
            session.close()

    sampler = (MemorySampler(peer.server_pid, progress=lambda: stored_so_far.value)
               if peer.server_pid else contextlib.nullcontext())
    with sampler:
        started = time.perf_counter()
        threads = [threading.Thread(target=send_bodies, name=f"stow-{n}", daemon=True) for n in range(clients)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            if any(thread.is_alive() for thread in threads):
                cancel.set()
        seconds = time.perf_counter() - started
    if cancel.is_set():
        raise Cancelled()
    stored = sum(outcome.stored for outcome in outcomes)
    dicom_bytes = sum(body.dicom_bytes for body in bodies)
    summary: dict[str, object] = {
        "requests": len(bodies), "clients": clients, "instances_sent": total_instances, "stored": stored,
        "failed": sum(outcome.failed for outcome in outcomes), "seconds": seconds,
        "instances_per_second": stored / seconds if seconds else 0.0,
        "megabytes_per_second": dicom_bytes / MEGABYTE / seconds if seconds and stored == total_instances else 0.0,
        "dicom_bytes": dicom_bytes,
        "request_latency": latency_summary([outcome.seconds for outcome in outcomes]),
        "statuses": dict(Tally(outcome.status for outcome in outcomes)),
        "errors": [outcome.error for outcome in outcomes if outcome.error][:MAX_ERRORS_KEPT],
    }
    if isinstance(sampler, MemorySampler):
        summary["rss_before_mib"] = sampler.samples[0][2] / MEBIBYTE if sampler.samples else 0.0
        summary["peak_rss_mib"] = sampler.peak_bytes / MEBIBYTE
        summary["peak_rss_by_quarter_mib"] = sampler.peak_by_quarter(total_instances)
        summary["rss_after_mib"] = sampler.samples[-1][2] / MEBIBYTE if sampler.samples else 0.0
    return summary


# --- QIDO-RS --------------------------------------------------------------------------------------------

@dataclass
class QueryType:
    key: str
    title: str
    parameters: Callable[[int], list[tuple[str, str]]]  # parameters of the n-th query
    expected: Callable[[int], int] | None  # expected number of results of the n-th query, if known


def query_types(dataset: BenchDataset) -> list[QueryType]:
    """The five QIDO study queries of docs/benchmarks.md "Targets", with the answers the data set says they must give."""
    patients = sorted({study.patient_id for study in dataset.studies})
    modalities = sorted({modality for study in dataset.studies for modality in study.modalities})
    limit = int(QUERY_LIMIT)

    def studies_where(predicate: Callable[[StudyEntry], bool]) -> int:
        return min(limit, sum(1 for study in dataset.studies if predicate(study)))

    return [
        QueryType("qido_patient_id", "QIDO studies by PatientID",
                  lambda n: [("PatientID", patients[n % len(patients)])],
                  lambda n: sum(1 for s in dataset.studies if s.patient_id == patients[n % len(patients)])),
        QueryType("qido_all_limit_100", "QIDO all studies, limit 100", lambda n: [("limit", QUERY_LIMIT)],
                  lambda n: min(limit, len(dataset.studies))),
        QueryType("qido_date_range", "QIDO StudyDate range",
                  lambda n: [("StudyDate", f"{DATE_RANGE[0]}-{DATE_RANGE[1]}"), ("limit", QUERY_LIMIT)],
                  lambda n: studies_where(lambda s: DATE_RANGE[0] <= s.study_date <= DATE_RANGE[1])),
        QueryType("qido_modality", "QIDO ModalitiesInStudy",
                  lambda n: [("ModalitiesInStudy", modalities[n % len(modalities)]), ("limit", QUERY_LIMIT)],
                  lambda n: studies_where(lambda s: modalities[n % len(modalities)] in s.modalities)),
        QueryType("qido_name_wildcard", "QIDO PatientName DOE*",
                  lambda n: [("PatientName", WILDCARD_NAME), ("limit", QUERY_LIMIT)],
                  lambda n: studies_where(lambda s: s.patient_name.startswith(WILDCARD_NAME[:-1]))),
    ]


def qido_phase(peer: Peer, query: QueryType, *, repeats: int, warmup: int = 3,
               check_counts: bool = True) -> dict[str, object]:
    session = client.new_session(peer)
    try:
        for n in range(warmup):
            client.qido(session, peer, "/studies", query.parameters(n))
        timings: list[float] = []
        counts: list[int] = []
        errors: list[str] = []
        mismatches = 0
        statuses: Tally[int] = Tally()
        for n in range(repeats):
            answer = client.qido(session, peer, "/studies", query.parameters(n))
            timings.append(answer.seconds)
            counts.append(answer.count)
            statuses[answer.status] += 1
            if answer.error and len(errors) < MAX_ERRORS_KEPT:
                errors.append(answer.error)
            if check_counts and query.expected is not None and answer.count != query.expected(n):
                mismatches += 1
                if len(errors) < MAX_ERRORS_KEPT:
                    errors.append(f"{client.query_string(query.parameters(n))}: {answer.count} results, "
                                  f"expected {query.expected(n)}")
    finally:
        session.close()
    return {
        **latency_summary(timings), "example": client.query_string(query.parameters(0)),
        "results_min": min(counts, default=0), "results_max": max(counts, default=0),
        "count_mismatches": mismatches, "statuses": dict(statuses), "errors": errors,
    }


# --- WADO-RS --------------------------------------------------------------------------------------------

def wado_series_phase(peer: Peer, series: list[tuple[StudyEntry, SeriesEntry]]) -> dict[str, object]:
    session = client.new_session(peer)
    answers: list[client.TimedAnswer] = []
    errors: list[str] = []
    try:
        for study, one_series in series:
            answer = client.retrieve_series(session, peer, study.study_instance_uid, one_series.series_instance_uid)
            answers.append(answer)
            if answer.count != len(one_series.instances) and len(errors) < MAX_ERRORS_KEPT:
                errors.append(f"series {one_series.series_instance_uid}: {answer.count} parts, expected "
                              f"{len(one_series.instances)} ({answer.error or answer.content_type})")
    finally:
        session.close()
    seconds = sum(answer.seconds for answer in answers)
    total_bytes = sum(answer.bytes for answer in answers)
    per_series = [answer.bytes / MEGABYTE / answer.seconds for answer in answers if answer.seconds]
    return {
        "series": len(answers), "bytes": total_bytes, "seconds": seconds,
        "megabytes_per_second": total_bytes / MEGABYTE / seconds if seconds else 0.0,
        "per_series_megabytes_per_second_min": min(per_series, default=0.0),
        "first_byte": latency_summary([answer.first_byte_seconds for answer in answers]),
        "series_time": latency_summary([answer.seconds for answer in answers]),
        "wrong_part_counts": sum(1 for (_, s), a in zip(series, answers, strict=True) if a.count != len(s.instances)),
        "content_type_example": answers[0].content_type if answers else "", "errors": errors,
    }


def rendered_phase(peer: Peer, frames: list[tuple[StudyEntry, SeriesEntry, InstanceEntry]]) -> dict[str, object]:
    """Each frame twice in a row: the first request is cold (never rendered by this server before),
    the second is warm (whatever the server keeps from the first may serve it)."""
    session = client.new_session(peer)
    cold: list[float] = []
    warm: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    failures = 0
    try:
        for study, series, instance in frames:
            for bucket in (cold, warm):
                answer = client.rendered_frame(session, peer, study.study_instance_uid,
                                               series.series_instance_uid, instance.sop_instance_uid)
                bucket.append(answer.seconds)
                sizes.append(answer.bytes)
                if answer.error:
                    failures += 1
                    if len(errors) < MAX_ERRORS_KEPT:
                        errors.append(answer.error)
    finally:
        session.close()
    return {"cold": latency_summary(cold), "warm": latency_summary(warm),
            "jpeg_bytes_mean": sum(sizes) / len(sizes) if sizes else 0, "render_errors": failures, "errors": errors}


def metadata_phase(peer: Peer, studies: list[StudyEntry], *, repeats: int) -> dict[str, object]:
    session = client.new_session(peer)
    timings: list[float] = []
    errors: list[str] = []
    wrong = 0
    try:
        for _ in range(repeats):
            for study in studies:
                answer = client.study_metadata(session, peer, study.study_instance_uid)
                timings.append(answer.seconds)
                if answer.count != study.instance_count:
                    wrong += 1
                    if len(errors) < MAX_ERRORS_KEPT:
                        errors.append(answer.error or f"study {study.study_instance_uid}: {answer.count} "
                                      f"instances in metadata, expected {study.instance_count}")
    finally:
        session.close()
    return {**latency_summary(timings), "repeats": repeats, "wrong_instance_counts": wrong, "errors": errors}


def rendered_sample(dataset: BenchDataset, count: int) -> list[tuple[StudyEntry, SeriesEntry, InstanceEntry]]:
    """`count` CT instances spread evenly over every CT series of the data set."""
    ct = [(study, series, instance) for study, series, instance in dataset.instances() if series.modality == "CT"]
    if not ct or count <= 0:
        return []
    step = max(1, len(ct) // count)
    return ct[::step][:count]
