"""DICOMweb (PS3.18) on every tenant domain under /dicomweb: STOW-RS, QIDO-RS, WADO-RS and delete.

Only the HTTP layer lives here: parsing requests, negotiating media types, framing multipart
answers. What is stored, found and read comes from apps.archive (services and selectors).
"""
