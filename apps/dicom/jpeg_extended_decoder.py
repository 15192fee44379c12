"""A pydicom decoder plugin for 12-bit JPEG Extended (process 4, 1.2.840.10008.1.2.4.51) through GDCM.

pydicom's own plugins leave some 12-bit JPEG Extended streams undecoded: Pillow has no 12-bit JPEG,
libjpeg (pylibjpeg-libjpeg) refuses a sequential scan whose spectral selection is not 0..63, which
older encoders write, and pydicom's GDCM plugin refuses 12-bit precision altogether. GDCM's own
decoder (the IJG 12-bit library that DCMTK and Orthanc also use) reads them. This plugin is tried
after the others (`register`), so it only decodes what they could not; pydicom's own GDCM plugin,
which installing GDCM would put first for every JPEG and JPEG 2000 syntax, is taken out, so the
decoders the archive was tested with keep decoding everything else.
"""

from __future__ import annotations

from typing import Any, Final

from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.gdcm import DECODER_DEPENDENCIES as PYDICOM_GDCM_SYNTAXES
from pydicom.uid import JPEGExtended12Bit

try:
    import gdcm

    HAVE_GDCM = True
except ImportError:  # pragma: no cover - python-gdcm is a pinned dependency
    HAVE_GDCM = False

PLUGIN_LABEL: Final = "gdcm-12-bit"


def is_available(uid: str) -> bool:
    """pydicom's plugin protocol: whether this plugin decodes `uid`."""
    return HAVE_GDCM and uid == JPEGExtended12Bit


def decode_frame(src: bytes, runner: Any) -> bytes:
    """One encoded frame as native little endian samples (pydicom's `DecodeRunner` protocol)."""
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    if runner.samples_per_pixel > 1:
        image.SetPlanarConfiguration(runner.planar_configuration)
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    bits_stored = runner.bits_stored
    image.SetPixelFormat(gdcm.PixelFormat(
        runner.samples_per_pixel, runner.bits_allocated, bits_stored, bits_stored - 1, runner.pixel_representation,
    ))
    # GDCM hands the buffer back as a str of surrogate-escaped bytes.
    frame: bytes = image.GetBuffer().encode("utf-8", "surrogateescape")
    if not frame:
        raise RuntimeError("GDCM could not decode the JPEG Extended frame")
    return frame


def register() -> None:
    """Add the plugin to pydicom's JPEG Extended decoder, after the plugins pydicom ships."""
    for uid in PYDICOM_GDCM_SYNTAXES:
        if "gdcm" in get_decoder(uid).available_plugins:
            get_decoder(uid).remove_plugin("gdcm")
    decoder = get_decoder(JPEGExtended12Bit)
    if PLUGIN_LABEL not in decoder.available_plugins and HAVE_GDCM:
        decoder.add_plugin(PLUGIN_LABEL, (__name__, "decode_frame"))
