"""Inference engines: the contract every engine honours (``base``) and the engines themselves.

No Django imports here: engines take a ``VolumeInput`` built from pydicom datasets and return an
``EngineResult``; jobs, queues and storage are the caller's business.
"""
