"""Capability 4, AI inference (DESIGN.md §3): engines, and their results as DICOM SEG and SR.

The Django layer (models, services, tasks, API) is added later; ``engines`` and ``results`` are
plain modules with no Django imports (DESIGN.md §5, rule 4 of §8).
"""
