"""Engine results encoded as standard DICOM objects (SEG, Comprehensive 3D SR) with highdicom."""
