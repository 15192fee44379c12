"""The engine registry: engines built into the platform, plus the ONNX models and vendor systems a
tenant has been given (``EngineSetting`` rows with a definition), each with the tenant's enablement.

A definition is plain JSON so an operator configures a model without code:

- ONNX: ``{"version", "vendor", "description", "modalities", "body_parts", "minimum_slices",
  "model_path", "window": {"center", "width"}, "layout", "input_spacing_mm", "input_shape",
  "output": {"kind": "segmentation", "labels": {"1": "lesion"}, "threshold"} |
  {"kind": "classification", "class_names": [...], "threshold", "activation"}}``
- external: ``{"version", "vendor", "description", "modalities", "body_parts", "minimum_slices",
  "url"}`` (see ``apps.ai.external``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.ai.engines.base import EngineDescriptor, InferenceEngine, OutputKind
from apps.ai.engines.onnx_engine import (
    ClassificationOutput,
    IntensityWindow,
    OnnxEngine,
    OnnxModelSpec,
    SegmentationOutput,
)
from apps.ai.engines.pulmonary_nodule import PulmonaryNoduleDetector
from apps.ai.models import EngineKind, EngineSetting
from apps.core.errors import InvalidInput

DEFAULT_TIMEOUT_SECONDS = 600.0


class EngineDefinitionInvalid(InvalidInput):
    code = "engine_definition_invalid"


@dataclass(frozen=True)
class RegisteredEngine:
    """An engine as this tenant sees it: what it is, whether it is enabled, how long it may run."""

    descriptor: EngineDescriptor
    kind: str
    enabled: bool
    timeout_seconds: float
    definition: Mapping[str, Any]

    def build(self) -> InferenceEngine:
        """The runnable engine (external engines are not run in-process: see apps.ai.external)."""
        if self.kind == EngineKind.BUILT_IN:
            return _BUILT_IN[self.descriptor.name][1]()
        if self.kind == EngineKind.ONNX:
            return OnnxEngine(onnx_spec(self.descriptor, self.definition))
        raise EngineDefinitionInvalid(f"{self.descriptor.name} is an external engine; it is not run in-process")

    def as_json(self) -> dict[str, Any]:
        return {**self.descriptor.as_json(), "kind": self.kind, "enabled": self.enabled,
                "timeout_seconds": self.timeout_seconds}


def _pulmonary_nodule() -> InferenceEngine:
    return PulmonaryNoduleDetector()


_BUILT_IN: dict[str, tuple[EngineDescriptor, Callable[[], InferenceEngine]]] = {
    PulmonaryNoduleDetector().descriptor.name: (PulmonaryNoduleDetector().descriptor, _pulmonary_nodule),
}


def built_in_descriptors() -> list[EngineDescriptor]:
    return [descriptor for descriptor, _ in _BUILT_IN.values()]


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EngineDefinitionInvalid(f"'{field}' must be a list of strings")
    return tuple(item.upper() for item in value)


def descriptor_from_definition(name: str, kind: str, definition: Mapping[str, Any]) -> EngineDescriptor:
    """The descriptor of an ONNX or external engine; raises EngineDefinitionInvalid with the reason."""
    try:
        version = str(definition["version"])
        vendor = str(definition.get("vendor", ""))
        minimum_slices = int(definition.get("minimum_slices", 1))
    except (KeyError, TypeError, ValueError) as error:
        raise EngineDefinitionInvalid(f"the definition needs a 'version' and an integer 'minimum_slices': {error}") from error
    outputs: tuple[OutputKind, ...] = (OutputKind.JSON,)
    if kind == EngineKind.EXTERNAL:
        outputs = (OutputKind.SEGMENTATION, OutputKind.STRUCTURED_REPORT, OutputKind.JSON)
    return EngineDescriptor(
        name=name, version=version, vendor=vendor, description=str(definition.get("description", "")),
        modalities=_strings(definition.get("modalities", []), "modalities"),
        body_parts=_strings(definition.get("body_parts", []), "body_parts"),
        minimum_slices=minimum_slices, outputs=outputs,
    )


def onnx_spec(descriptor: EngineDescriptor, definition: Mapping[str, Any]) -> OnnxModelSpec:
    """The ``OnnxModelSpec`` a definition declares (the model file itself is opened at run time)."""
    try:
        window = IntensityWindow(float(definition["window"]["center"]), float(definition["window"]["width"]))
        output_definition = definition["output"]
        output: SegmentationOutput | ClassificationOutput
        if output_definition["kind"] == "segmentation":
            output = SegmentationOutput(
                labels={int(key): str(value) for key, value in output_definition["labels"].items()},
                threshold=float(output_definition.get("threshold", 0.5)),
            )
        elif output_definition["kind"] == "classification":
            output = ClassificationOutput(
                class_names=tuple(str(name) for name in output_definition["class_names"]),
                threshold=float(output_definition.get("threshold", 0.5)),
                activation=output_definition.get("activation", "none"),
            )
        else:
            raise EngineDefinitionInvalid("output.kind must be 'segmentation' or 'classification'")
        spacing = definition.get("input_spacing_mm")
        shape = definition.get("input_shape")
        layout = definition.get("layout", "volume")
        if layout not in ("volume", "slices"):
            raise EngineDefinitionInvalid("layout must be 'volume' or 'slices'")
        return OnnxModelSpec(
            model_path=Path(str(definition["model_path"])),
            descriptor=descriptor,
            window=window,
            output=output,
            layout=layout,
            input_spacing_mm=None if spacing is None else (float(spacing[0]), float(spacing[1]), float(spacing[2])),
            input_shape=None if shape is None else tuple(int(value) for value in shape),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise EngineDefinitionInvalid(f"the ONNX definition is incomplete or malformed: {error!r}") from error


def validate_definition(name: str, kind: str, definition: Mapping[str, Any]) -> EngineDescriptor:
    if kind == EngineKind.BUILT_IN:
        raise EngineDefinitionInvalid("built-in engines are defined in code")
    descriptor = descriptor_from_definition(name, kind, definition)
    if kind == EngineKind.ONNX:
        onnx_spec(descriptor, definition)
    elif kind == EngineKind.EXTERNAL:
        url = definition.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EngineDefinitionInvalid("an external engine needs an http(s) 'url'")
    return descriptor


def registered_engines(settings_rows: Iterable[EngineSetting]) -> list[RegisteredEngine]:
    """Every engine the tenant can see: built-ins (enabled unless a setting says otherwise) and defined ones."""
    rows = {row.engine_name: row for row in settings_rows}
    engines: list[RegisteredEngine] = []
    for descriptor in built_in_descriptors():
        row = rows.pop(descriptor.name, None)
        engines.append(RegisteredEngine(
            descriptor=descriptor, kind=EngineKind.BUILT_IN, enabled=row.enabled if row else True,
            timeout_seconds=row.timeout_seconds if row else DEFAULT_TIMEOUT_SECONDS, definition={},
        ))
    for row in rows.values():
        if row.kind == EngineKind.BUILT_IN:
            continue  # a setting for a built-in engine that no longer exists
        engines.append(RegisteredEngine(
            descriptor=descriptor_from_definition(row.engine_name, row.kind, row.definition), kind=row.kind,
            enabled=row.enabled, timeout_seconds=row.timeout_seconds, definition=row.definition,
        ))
    return sorted(engines, key=lambda engine: engine.descriptor.name)
