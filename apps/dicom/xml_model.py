"""The DICOM JSON model (PS3.18 §F) as the Native DICOM Model XML (PS3.19 §A.1), for metadata sent as
application/dicom+xml. Written with xml.etree; values are taken as the JSON model holds them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from xml.etree import ElementTree

from pydicom.datadict import keyword_for_tag

NATIVE_DICOM_NAMESPACE: Final = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_NAME_COMPONENTS: Final = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def _person_name(parent: ElementTree.Element, number: int, value: Mapping[str, str]) -> None:
    name = ElementTree.SubElement(parent, "PersonName", number=str(number))
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        text = value.get(group)
        if not text:
            continue
        group_element = ElementTree.SubElement(name, group)
        for component, part in zip(_NAME_COMPONENTS, text.split("^"), strict=False):
            if part:
                ElementTree.SubElement(group_element, component).text = part


def _attributes(parent: ElementTree.Element, document: Mapping[str, Any]) -> None:
    for tag in sorted(document):
        entry = document[tag]
        vr = entry.get("vr", "UN")
        attribute = ElementTree.SubElement(parent, "DicomAttribute", {"tag": tag.upper(), "vr": vr})
        keyword = keyword_for_tag(int(tag, 16))
        if keyword:
            attribute.set("keyword", keyword)
        if "BulkDataURI" in entry:
            ElementTree.SubElement(attribute, "BulkData", uri=entry["BulkDataURI"])
        elif "InlineBinary" in entry:
            ElementTree.SubElement(attribute, "InlineBinary").text = entry["InlineBinary"]
        for number, value in enumerate(entry.get("Value", []), start=1):
            if vr == "SQ":
                item = ElementTree.SubElement(attribute, "Item", number=str(number))
                _attributes(item, value or {})
            elif vr == "PN" and isinstance(value, Mapping):
                _person_name(attribute, number, value)
            elif value is not None:
                ElementTree.SubElement(attribute, "Value", number=str(number)).text = str(value)


def native_dicom_xml(document: Mapping[str, Any]) -> bytes:
    """One instance's DICOM JSON object as a NativeDicomModel document (UTF-8, with its declaration)."""
    root = ElementTree.Element("NativeDicomModel", xmlns=NATIVE_DICOM_NAMESPACE)
    _attributes(root, document)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
