"""The archive index: patients, studies, series and instances of one tenant (its schema).

The index is a cache of what object storage holds: every instance row names the object with the
original bytes (`object_key`), and the index could be rebuilt by reading those objects again.

Shape, chosen for QIDO-RS (PS3.18 §10.6) at 10,000 studies / 1,000,000 instances:

- patient attributes are copied onto Study, so a study query never joins;
- Study and Series keep their counters (instances, series, bytes) and ModalitiesInStudy, maintained
  by the ingest transaction with F() increments, so computed attributes cost nothing to answer;
- every matched attribute has a btree index restricted to live rows (``deleted_at IS NULL``); person
  names are matched on an upper-case, accent-free copy (`patient_name_search`, pattern index for
  wild cards) and on phonetic keys (`patient_name_keys`, GIN) for fuzzy matching;
- each instance's DICOM JSON metadata is stored as text with BulkDataURIs, ready to be joined into a
  /metadata answer without parsing anything.

Deletion is soft (`deleted_at`, `purge_after`): rows stay, hidden from every query, until the purge
task removes them and their objects after the retention window. Uniqueness of UIDs holds among live
rows only, so a deleted study can be sent again while its old copy waits for the purge.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q

LIVE = Q(deleted_at__isnull=True)


class Patient(models.Model):
    """A patient as identified by Patient ID and Issuer of Patient ID (PS3.3 §C.7.1.1)."""

    patient_id = models.CharField(max_length=64)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_name = models.CharField(max_length=330, blank=True, default="")
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient_id", "issuer_of_patient_id"], name="archive_patient_identity"),
        ]

    def __str__(self) -> str:
        return self.patient_id


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=64)
    patient_record = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    # Patient attributes as the study's instances carry them (PS3.18 Table 10.6.1-5 study level).
    patient_id = models.CharField(max_length=64)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_name = models.CharField(max_length=330, blank=True, default="")
    patient_name_search = models.CharField(max_length=330, blank=True, default="")
    patient_name_keys = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True, default="")
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    accession_number = models.CharField(max_length=64, blank=True, default="")
    study_id = models.CharField(max_length=64, blank=True, default="")
    study_description = models.CharField(max_length=256, blank=True, default="")
    referring_physician_name = models.CharField(max_length=330, blank=True, default="")
    referring_physician_name_search = models.CharField(max_length=330, blank=True, default="")
    modalities_in_study = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    number_of_series = models.IntegerField(default=0)
    number_of_instances = models.IntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_instance_at = models.DateTimeField()
    # Set once no instance has arrived for STUDY_STABLE_SECONDS (see services.stability); cleared
    # again when a new instance arrives.
    stable_at = models.DateTimeField(null=True, blank=True)
    # Set when an instance whose patient identity contradicts this study's was refused (the first
    # time); the conflicting values are in StudyIdentityConflict. Quality control reads this flag.
    identity_conflict_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study_instance_uid"], condition=LIVE, name="archive_study_uid_live"),
        ]
        indexes = [
            # Default QIDO order (newest study first) and StudyDate ranges.
            models.Index(F("study_date").desc(nulls_last=True), F("id").desc(), condition=LIVE,
                         name="archive_study_date_order"),
            models.Index(fields=["patient_id"], condition=LIVE, name="archive_study_patient_id"),
            models.Index(fields=["accession_number"], condition=LIVE, name="archive_study_accession"),
            models.Index(fields=["patient_name_search"], condition=LIVE, name="archive_study_name",
                         opclasses=["varchar_pattern_ops"]),
            GinIndex(fields=["patient_name_keys"], condition=LIVE, name="archive_study_name_keys"),
            GinIndex(fields=["modalities_in_study"], condition=LIVE, name="archive_study_modalities"),
            models.Index(fields=["last_instance_at"], condition=Q(stable_at__isnull=True, deleted_at__isnull=True),
                         name="archive_study_unstable"),
            models.Index(fields=["purge_after"], condition=Q(deleted_at__isnull=False), name="archive_study_purge"),
            models.Index(fields=["created_at"], name="archive_study_created"),
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=64)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True, default="")
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=256, blank=True, default="")
    body_part_examined = models.CharField(max_length=64, blank=True, default="")
    performed_procedure_step_start_date = models.DateField(null=True, blank=True)
    performed_procedure_step_start_time = models.TimeField(null=True, blank=True)
    number_of_instances = models.IntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["series_instance_uid"], condition=LIVE, name="archive_series_uid_live"),
        ]
        indexes = [
            models.Index(fields=["study", "series_number", "id"], condition=LIVE, name="archive_series_in_study"),
            models.Index(fields=["modality"], condition=LIVE, name="archive_series_modality"),
            models.Index(fields=["purge_after"], condition=Q(deleted_at__isnull=False), name="archive_series_purge"),
        ]

    def __str__(self) -> str:
        return self.series_instance_uid


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=64)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    number_of_frames = models.IntegerField(null=True, blank=True)
    bits_allocated = models.IntegerField(null=True, blank=True)
    # apps.dicom.headers.datetime_key of the DT value: compared as text, no time zone to convert.
    acquisition_datetime = models.CharField(max_length=21, blank=True, default="")
    transfer_syntax_uid = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    object_key = models.CharField(max_length=400)
    # DICOM JSON (PS3.18 §F) of the instance without pixel data, as text: bulk values are
    # BulkDataURIs relative to the DICOMweb service root (made absolute when served, see
    # apps.archive.metadata).
    metadata_json = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sop_instance_uid"], condition=LIVE, name="archive_instance_uid_live"),
        ]
        indexes = [
            models.Index(fields=["series", "instance_number", "id"], condition=LIVE, name="archive_instance_in_series"),
            models.Index(fields=["study", "id"], condition=LIVE, name="archive_instance_in_study"),
            # Which row (live or deleted) names a stored object: the orphan collector and
            # archive_reindex ask it for every object they list (services.storage_recovery).
            models.Index(fields=["object_key"], name="archive_instance_object_key"),
        ]

    def __str__(self) -> str:
        return self.sop_instance_uid


class StudyIdentityConflict(models.Model):
    """One refused instance whose Patient ID, Issuer, Patient Name or Birth Date contradicted the
    study it names (see docs/dicomweb.md, "Patient identity"). `attributes` holds, per keyword,
    the value the study keeps and the value the instance carried: {"PatientID": {"stored": …,
    "received": …}, …}."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="identity_conflicts")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64)
    attributes = models.JSONField()
    via = models.CharField(max_length=32)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["study", "detected_at"], name="archive_conflict_study")]

    def __str__(self) -> str:
        return f"{self.sop_instance_uid} in {self.study_id}"


class ArchiveUsage(models.Model):
    """The tenant's archive meter: one row (id 1). Every index write locks it first, which also
    orders concurrent ingests, deletions and purges of the tenant one after another."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    stored_bytes = models.BigIntegerField(default=0)
    stored_instances = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="archive_usage_single_row")]


class StorageExtrasUsage(models.Model):
    """What the tenant keeps in storage besides its archive: the rendered cache and the bytes of
    upload sessions not ingested yet. One row (id 1). Both count toward the storage quota
    (apps.archive.selectors.storage_usage). Kept apart from ArchiveUsage so that recording a cached
    image or a staged file never waits behind an ingest holding the archive meter's lock."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    rendered_cache_bytes = models.BigIntegerField(default=0)
    rendered_cache_entries = models.BigIntegerField(default=0)
    staged_upload_bytes = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="storage_extras_usage_single_row")]


class RenderedCacheEntry(models.Model):
    """One image of the rendered cache in the tenant's storage (a canonical render: see
    apps.archive.retrieval). The rows let the cache be held under its per-tenant cap by evicting
    the least recently used entries, and let its bytes be counted."""

    object_key = models.CharField(max_length=500, unique=True)
    # The stored instance it was rendered from: purged with it.
    instance_object_key = models.CharField(max_length=400, db_index=True)
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Refreshed at most once a minute per entry when it is served from storage (see retrieval).
    last_used_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["last_used_at", "id"], name="rendered_cache_lru")]
