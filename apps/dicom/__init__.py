"""The plain-Python DICOM core: parsing, matching, rendering and transcoding.

Nothing in this package imports Django (docs/conventions.md "Layers": the DICOM core is plain
Python), so it is fast to test and can be reused by views, services and Celery tasks alike.
"""
