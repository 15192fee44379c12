"""Reads of the archive index: QIDO-RS searches and the instances a WADO-RS request names.

Every query filters on `deleted_at IS NULL` (deleted rows are hidden at once) and is shaped to use
the partial indexes declared on the models: see apps.archive.models for which index serves which
query.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.db import connection
from django.db.models import CharField, F, Lookup, Q, QuerySet

from apps.archive.models import ArchiveUsage, Instance, Series, StorageExtrasUsage, Study
from apps.dicom.headers import datetime_key_of
from apps.dicom.index_attributes import (
    BY_KEYWORD,
    ColumnKind,
    IndexedAttribute,
    Level,
    attributes_of,
    levels_up_to,
)
from apps.dicom.matching import (
    Criterion,
    MatchKind,
    QidoQuery,
    fuzzy_query_keys,
    normalise_person_name,
    wildcard_to_like,
)


@CharField.register_lookup
class DicomLike(Lookup):
    """``column LIKE pattern`` with backslash escapes (the pattern comes from `wildcard_to_like`)."""

    lookup_name = "dicom_like"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]


# Column-name prefixes that reach each level's attributes from the model a search runs on.
_PREFIXES: Final[dict[Level, dict[Level, str]]] = {
    Level.STUDY: {Level.STUDY: ""},
    Level.SERIES: {Level.STUDY: "study__", Level.SERIES: ""},
    Level.INSTANCE: {Level.STUDY: "study__", Level.SERIES: "series__", Level.INSTANCE: ""},
}


def column_path(level: Level, attribute: IndexedAttribute) -> str:
    """The key of `attribute`'s value in the rows of a search at `level` (SearchPage.rows)."""
    return _PREFIXES[level][attribute.level] + attribute.column


@dataclass(frozen=True)
class SearchPage:
    """One page of QIDO-RS results: rows of column values, and whether more results follow."""

    level: Level
    rows: list[dict[str, Any]]
    more: bool
    unsupported: tuple[str, ...]


def _text_q(column: str, criterion: Criterion) -> Q | None:
    if criterion.kind in (MatchKind.SINGLE, MatchKind.FUZZY):
        return Q(**{column: criterion.values[0]})
    if criterion.kind == MatchKind.LIST:
        return Q(**{f"{column}__in": list(criterion.values)})
    if criterion.kind == MatchKind.WILDCARD:
        return Q(**{f"{column}__dicom_like": wildcard_to_like(criterion.values[0])})
    return None


def _person_name_q(prefix: str, attribute: IndexedAttribute, criterion: Criterion) -> Q | None:
    search = prefix + attribute.search_column
    value = criterion.values[0] if criterion.values else ""
    if criterion.kind == MatchKind.SINGLE:
        return Q(**{search: normalise_person_name(value)})
    if criterion.kind == MatchKind.LIST:
        return Q(**{f"{search}__in": [normalise_person_name(item) for item in criterion.values]})
    if criterion.kind == MatchKind.WILDCARD:
        return Q(**{f"{search}__dicom_like": wildcard_to_like(normalise_person_name(value))})
    if criterion.kind == MatchKind.FUZZY:
        keys = fuzzy_query_keys(value)
        if not keys:
            return None
        if attribute.keys_column:
            return Q(**{f"{prefix}{attribute.keys_column}__contains": keys})
        words = [word for word in normalise_person_name(value).replace("^", " ").split() if word]
        condition = Q()
        for word in words:
            condition &= Q(**{f"{search}__contains": word})
        return condition
    return None


def _range_q(column: str, criterion: Criterion) -> Q | None:
    condition = Q()
    if criterion.lower is not None:
        condition &= Q(**{f"{column}__gte": criterion.lower})
    if criterion.upper is not None:
        condition &= Q(**{f"{column}__lte": criterion.upper})
    return condition


def _datetime_range_q(column: str, criterion: Criterion) -> Q:
    """DT bounds against the index's text form; an instance without the value never matches."""
    condition = ~Q(**{column: ""})
    if isinstance(criterion.lower, datetime):
        condition &= Q(**{f"{column}__gte": datetime_key_of(criterion.lower)})
    if isinstance(criterion.upper, datetime):
        condition &= Q(**{f"{column}__lte": datetime_key_of(criterion.upper)})
    return condition


def _criterion_q(criterion: Criterion, attribute: IndexedAttribute, prefix: str) -> Q | None:
    column = prefix + attribute.column
    if criterion.kind == MatchKind.UNIVERSAL:
        return None
    if attribute.kind == ColumnKind.PERSON_NAME:
        return _person_name_q(prefix, attribute, criterion)
    if attribute.kind in (ColumnKind.DATE, ColumnKind.TIME):
        return _range_q(column, criterion) if criterion.kind == MatchKind.RANGE else None
    if attribute.kind == ColumnKind.DATETIME:
        return _datetime_range_q(column, criterion) if criterion.kind == MatchKind.RANGE else None
    if attribute.kind == ColumnKind.INTEGER:
        if criterion.kind == MatchKind.SINGLE:
            return Q(**{column: int(criterion.values[0])})
        if criterion.kind == MatchKind.LIST:
            return Q(**{f"{column}__in": [int(item) for item in criterion.values]})
        return None
    if attribute.kind == ColumnKind.CODE_ARRAY:
        if criterion.kind == MatchKind.SINGLE:
            return Q(**{f"{column}__contains": [criterion.values[0]]})
        if criterion.kind == MatchKind.LIST:
            return Q(**{f"{column}__overlap": list(criterion.values)})
        return None
    return _text_q(column, criterion)


def _matching(query: QidoQuery, level: Level) -> tuple[Q, tuple[str, ...]]:
    """The filter for the query's keys at `level`; keys the index cannot match are returned apart."""
    condition = Q()
    unsupported = list(query.unsupported)
    allowed = levels_up_to(level)
    for criterion in query.criteria:
        attribute = BY_KEYWORD.get(criterion.attribute.keyword)
        if criterion.kind == MatchKind.UNIVERSAL:
            continue  # matches every row (a return key, PS3.4 §C.2.2.2.3)
        if attribute is None or attribute.level not in allowed or criterion.kind not in attribute.matching:
            unsupported.append(criterion.attribute.keyword)
            continue
        part = _criterion_q(criterion, attribute, _PREFIXES[level][attribute.level])
        if part is not None:
            condition &= part
    return condition, tuple(unsupported)


def _columns(level: Level) -> list[str]:
    columns: list[str] = []
    for attribute_level in levels_up_to(level):
        columns += [column_path(level, attribute) for attribute in attributes_of(attribute_level)]
    return list(dict.fromkeys(columns))


def _page(queryset: QuerySet[Any], query: QidoQuery, level: Level, unsupported: tuple[str, ...],
          default_limit: int, extra_columns: tuple[str, ...] = ()) -> SearchPage:
    limit = query.limit if query.limit is not None else default_limit
    window = queryset.values(*_columns(level), *extra_columns)[query.offset: query.offset + limit + 1]
    rows = list(window)
    return SearchPage(level=level, rows=rows[:limit], more=len(rows) > limit, unsupported=unsupported)


def studies_search(
    *, query: QidoQuery, default_limit: int, within_studies: Collection[str] | None = None
) -> SearchPage:
    """Studies matching the query, newest study date first (PS3.18 §10.6.1, /studies); only among
    `within_studies` (StudyInstanceUIDs) when given."""
    condition, unsupported = _matching(query, Level.STUDY)
    queryset = (
        Study.objects.filter(condition, deleted_at__isnull=True)
        .order_by(F("study_date").desc(nulls_last=True), F("id").desc())
    )
    if within_studies is not None:
        queryset = queryset.filter(study_instance_uid__in=list(within_studies))
    return _page(queryset, query, Level.STUDY, unsupported, default_limit)


def series_search(
    *, query: QidoQuery, default_limit: int, study_instance_uid: str | None = None,
    within_studies: Collection[str] | None = None,
) -> SearchPage:
    """Series matching the query: of one study in series-number order, or of every study (/series);
    only of `within_studies` when given."""
    condition, unsupported = _matching(query, Level.SERIES)
    queryset = Series.objects.filter(condition, deleted_at__isnull=True, study__deleted_at__isnull=True)
    if within_studies is not None:
        queryset = queryset.filter(study__study_instance_uid__in=list(within_studies))
    if study_instance_uid is not None:
        queryset = queryset.filter(study__study_instance_uid=study_instance_uid).order_by(
            F("series_number").asc(nulls_last=True), "id"
        )
    else:
        queryset = queryset.order_by("-id")
    return _page(queryset, query, Level.SERIES, unsupported, default_limit)


def instances_search(
    *,
    query: QidoQuery,
    default_limit: int,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    with_metadata: bool = False,
    within_studies: Collection[str] | None = None,
) -> SearchPage:
    """Instances matching the query, in instance-number order within a series; only of
    `within_studies` when given."""
    condition, unsupported = _matching(query, Level.INSTANCE)
    queryset = Instance.objects.filter(condition, deleted_at__isnull=True)
    if within_studies is not None:
        queryset = queryset.filter(study__study_instance_uid__in=list(within_studies), study__deleted_at__isnull=True)
    if study_instance_uid is not None:
        queryset = queryset.filter(study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True)
    if series_instance_uid is not None:
        queryset = queryset.filter(series__series_instance_uid=series_instance_uid)
    if series_instance_uid is not None:
        queryset = queryset.order_by(F("instance_number").asc(nulls_last=True), "id")
    elif study_instance_uid is not None:
        queryset = queryset.order_by(
            F("series__series_number").asc(nulls_last=True), "series_id", F("instance_number").asc(nulls_last=True), "id"
        )
    else:
        queryset = queryset.order_by("-id")
    extra = ("metadata_json",) if with_metadata else ()
    return _page(queryset, query, Level.INSTANCE, unsupported, default_limit, extra)


# --- WADO-RS --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceFile:
    """An instance as WADO-RS serves it: where its bytes are, and what they are."""

    id: int
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    object_key: str
    size_bytes: int
    sha256: str
    number_of_frames: int
    modality: str
    body_part_examined: str
    rows: int | None

    @property
    def has_pixels(self) -> bool:
        return self.rows is not None


_FILE_COLUMNS = (
    "id", "study__study_instance_uid", "series__series_instance_uid", "sop_instance_uid", "sop_class_uid",
    "transfer_syntax_uid", "object_key", "size_bytes", "sha256", "number_of_frames", "series__modality",
    "series__body_part_examined", "rows",
)


def _live_instances(
    study_instance_uid: str, series_instance_uid: str | None = None, sop_instance_uid: str | None = None
) -> QuerySet[Instance]:
    instances = Instance.objects.filter(
        deleted_at__isnull=True, study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True
    )
    if series_instance_uid is not None:
        instances = instances.filter(series__series_instance_uid=series_instance_uid, series__deleted_at__isnull=True)
    if sop_instance_uid is not None:
        instances = instances.filter(sop_instance_uid=sop_instance_uid)
    return instances.order_by(
        F("series__series_number").asc(nulls_last=True), "series_id", F("instance_number").asc(nulls_last=True), "id"
    )


def _file(row: tuple[Any, ...]) -> InstanceFile:
    (identifier, study, series, sop, sop_class, syntax, key, size, sha, frames, modality, body_part, rows) = row
    return InstanceFile(identifier, study, series, sop, sop_class, syntax, key, size, sha, frames or 1, modality,
                        body_part, rows)


def instances_for_retrieval(
    *, study_instance_uid: str, series_instance_uid: str | None = None, sop_instance_uid: str | None = None
) -> list[InstanceFile]:
    """The live instances a WADO-RS URL names, in series and instance-number order (empty if none)."""
    rows = _live_instances(study_instance_uid, series_instance_uid, sop_instance_uid).values_list(*_FILE_COLUMNS)
    return [_file(row) for row in rows]


_INSTANCE_FILE_SQL = """
    SELECT instance.id, study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid,
           instance.sop_class_uid, instance.transfer_syntax_uid, instance.object_key, instance.size_bytes,
           instance.sha256, instance.number_of_frames, series.modality, series.body_part_examined, instance.rows
    FROM {instance} AS instance
    JOIN {series} AS series ON series.id = instance.series_id
    JOIN {study} AS study ON study.id = instance.study_id
    WHERE instance.sop_instance_uid = %s AND instance.deleted_at IS NULL
      AND series.series_instance_uid = %s AND series.deleted_at IS NULL
      AND study.study_instance_uid = %s AND study.deleted_at IS NULL
"""


def instance_for_retrieval(*, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str) -> InstanceFile | None:
    """One live instance by its three UIDs: the hot lookup of every frame and rendered request, so
    written as plain SQL (no query compilation per request); served by the live-UID unique index."""
    sql = _INSTANCE_FILE_SQL.format(
        instance=Instance._meta.db_table, series=Series._meta.db_table, study=Study._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sop_instance_uid, series_instance_uid, study_instance_uid])
        row = cursor.fetchone()
    return _file(row) if row else None


def metadata_texts(
    *, study_instance_uid: str, series_instance_uid: str | None = None, sop_instance_uid: str | None = None
) -> list[str]:
    """Stored DICOM JSON of the named live instances, in retrieval order."""
    return list(
        _live_instances(study_instance_uid, series_instance_uid, sop_instance_uid).values_list("metadata_json", flat=True)
    )


def representative_instance(*, study_instance_uid: str, series_instance_uid: str | None = None) -> InstanceFile | None:
    """The instance a thumbnail shows: the middle image of the (first imaging) series."""
    series = Series.objects.filter(
        deleted_at__isnull=True, study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True
    )
    if series_instance_uid is not None:
        series = series.filter(series_instance_uid=series_instance_uid)
    chosen = (
        series.filter(instances__rows__isnull=False, instances__deleted_at__isnull=True)
        .order_by(F("series_number").asc(nulls_last=True), "id")
        .values_list("id", flat=True)
        .first()
    )
    if chosen is None:
        return None
    images = Instance.objects.filter(series_id=chosen, deleted_at__isnull=True, rows__isnull=False).order_by(
        F("instance_number").asc(nulls_last=True), "id"
    )
    count = images.count()
    rows = list(images.values_list(*_FILE_COLUMNS)[count // 2: count // 2 + 1]) if count else []
    return _file(rows[0]) if rows else None


def series_thumbnail_candidates(*, study_id: int, series_ids: list[int]) -> list[tuple[str, str]]:
    """(study UID, series UID) of live series among `series_ids` of a live study, for warming thumbnails."""
    return list(
        Series.objects.filter(id__in=series_ids, study_id=study_id, deleted_at__isnull=True, study__deleted_at__isnull=True)
        .values_list("study__study_instance_uid", "series_instance_uid")
    )


def study_uid_of(study_id: int) -> str | None:
    return Study.objects.filter(pk=study_id, deleted_at__isnull=True).values_list("study_instance_uid", flat=True).first()


@dataclass(frozen=True)
class StorageUsage:
    """The tenant's bytes in storage as its storage quota counts them."""

    archive_bytes: int
    rendered_cache_bytes: int
    staged_upload_bytes: int

    @property
    def extras_bytes(self) -> int:
        return self.rendered_cache_bytes + self.staged_upload_bytes

    @property
    def total_bytes(self) -> int:
        return self.archive_bytes + self.extras_bytes


def storage_usage() -> StorageUsage:
    """Archive, rendered cache and staged uploads of the current tenant (two one-row reads, no lock)."""
    archive = ArchiveUsage.objects.filter(pk=1).values_list("stored_bytes", flat=True).first()
    extras = StorageExtrasUsage.objects.filter(pk=1).values_list("rendered_cache_bytes", "staged_upload_bytes").first()
    rendered_cache, staged = extras or (0, 0)
    return StorageUsage(archive_bytes=int(archive or 0), rendered_cache_bytes=int(rendered_cache),
                        staged_upload_bytes=int(staged))


def search_scope_exists(*, study_instance_uid: str | None, series_instance_uid: str | None) -> bool:
    """Whether the live study (and series in it) a scoped QIDO-RS search names exists; True for an
    unscoped search (/studies, /series, /instances always exist)."""
    if series_instance_uid is not None:
        return Series.objects.filter(
            series_instance_uid=series_instance_uid, deleted_at__isnull=True,
            study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True,
        ).exists()
    if study_instance_uid is not None:
        return Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).exists()
    return True


def studies_with_identity_conflicts() -> QuerySet[Study]:
    """Live studies an instance with a contradicting patient identity was refused for, most recently
    flagged first, with their conflict rows (what quality control reviews)."""
    return (
        Study.objects.filter(identity_conflict_at__isnull=False, deleted_at__isnull=True)
        .prefetch_related("identity_conflicts").order_by("-identity_conflict_at", "-id")
    )
