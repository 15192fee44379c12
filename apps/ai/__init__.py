"""Capability 4, AI inference (docs/ai.md): engines, and their results as DICOM SEG and SR.

The Django layer (models, services, tasks, API) is added later; ``engines`` and ``results`` are
plain modules with no Django imports (docs/conventions.md "Layers": the DICOM core is plain Python).
"""
