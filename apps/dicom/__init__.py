"""The plain-Python DICOM core: parsing, matching, rendering and transcoding.

Nothing in this package imports Django (DESIGN.md §5 and §8 rule 4), so it is fast to test and can be
reused by views, services and Celery tasks alike.
"""
