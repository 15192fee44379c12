"""The archive: ingest of DICOM instances, the patient/study/series/instance index, deletion with
retention, and the derived work that follows an ingest (thumbnails, the study-stable event)."""
