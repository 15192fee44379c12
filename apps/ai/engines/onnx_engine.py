"""Run any ONNX model on a CT volume with onnxruntime on the CPU.

An ``OnnxModelSpec`` declares what the model expects and what its output means, so a new model
is a configuration, not code:

- ``layout``: ``volume`` feeds one (1, 1, D, H, W) tensor; ``slices`` feeds the axial slices as
  a batch (S, 1, H, W) for 2D models.
- ``input_spacing_mm``: the voxel spacing (z, y, x) the model was trained at; the volume is
  resampled to it and the output class scores back to the volume's grid (linear interpolation
  both ways), before thresholding or argmax.
- ``input_shape``: the spatial shape the model requires, checked before running (a model's
  own fixed dimensions are checked too).
- ``window``: CT intensity window; HU are mapped linearly to [0, 1] over
  [center - width/2, center + width/2] and clipped. This is the usual training normalisation,
  not the display VOI LUT of PS3.3 C.11.2.1.2 (which shifts by half a unit).
- ``output``: ``SegmentationOutput`` (per-voxel class scores → label volume → findings, one per
  connected component or per class) or ``ClassificationOutput`` (scores → findings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from apps.ai.engines.base import (
    EngineDescriptor,
    EngineResult,
    Finding,
    VolumeInput,
    VoxelBox,
)

FULL_CONNECTIVITY_3D = np.ones((3, 3, 3), dtype=bool)


class OnnxModelError(ValueError):
    """The model cannot be loaded or does not fit its declared contract."""


class ModelFileMissing(OnnxModelError):
    """No model file at the declared path."""


class InputShapeMismatch(OnnxModelError):
    """The prepared input does not have the shape the model requires."""


class OutputShapeMismatch(OnnxModelError):
    """The model's output does not have the shape its output mapping expects."""


@dataclass(frozen=True)
class IntensityWindow:
    """Linear map of [center - width/2, center + width/2] HU to [0, 1], clipped."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError("window width must be positive")

    def normalise(self, voxels: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        lower = self.center - self.width / 2
        normalised = (voxels.astype(np.float32) - np.float32(lower)) / np.float32(self.width)
        return np.clip(normalised, 0.0, 1.0).astype(np.float32, copy=False)


@dataclass(frozen=True)
class SegmentationOutput:
    """Per-voxel class scores: (N, C, D, H, W) for ``volume``, (S, C, H, W) for ``slices``.

    With one channel the score is thresholded (class 1 where score ≥ ``threshold``); with
    several, each voxel takes the class of its highest score (channel 0 is background).
    ``labels`` names the classes to report: class index → finding label.
    """

    labels: Mapping[int, str]
    threshold: float = 0.5
    split_connected_components: bool = True
    minimum_volume_mm3: float = 0.0


@dataclass(frozen=True)
class ClassificationOutput:
    """One score per class: (N, K) or (N,). With ``slices`` the volume's score is the maximum over slices.

    ``activation`` turns logits into probabilities when the model does not ("sigmoid" per
    class, "softmax" across classes); a finding is reported for each class scoring ≥ ``threshold``.
    """

    class_names: tuple[str, ...]
    threshold: float = 0.5
    activation: Literal["none", "sigmoid", "softmax"] = "none"


@dataclass(frozen=True)
class OnnxModelSpec:
    model_path: Path
    descriptor: EngineDescriptor
    window: IntensityWindow
    output: SegmentationOutput | ClassificationOutput
    layout: Literal["volume", "slices"] = "volume"
    input_spacing_mm: tuple[float, float, float] | None = None
    input_shape: tuple[int, ...] | None = None
    input_name: str | None = None
    output_name: str | None = None
    intra_op_threads: int = 1


class OnnxEngine:
    """An ``InferenceEngine`` around one ONNX model (see the module docstring)."""

    def __init__(self, spec: OnnxModelSpec) -> None:
        import onnxruntime  # imported here: only workers that run models need it
        from onnxruntime.capi import onnxruntime_pybind11_state as runtime_errors

        self.spec = spec
        path = Path(spec.model_path)
        if not path.is_file():
            raise ModelFileMissing(f"ONNX model file not found: {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = spec.intra_op_threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                         providers=["CPUExecutionProvider"])
        except (runtime_errors.Fail, runtime_errors.InvalidGraph, runtime_errors.InvalidProtobuf,
                runtime_errors.NoSuchFile, runtime_errors.NotImplemented) as error:
            raise OnnxModelError(f"onnxruntime cannot load {path.name}: {error}") from error
        inputs = {item.name: item for item in self._session.get_inputs()}
        outputs = [item.name for item in self._session.get_outputs()]
        self._input_name = spec.input_name or next(iter(inputs))
        self._output_name = spec.output_name or outputs[0]
        if self._input_name not in inputs:
            raise OnnxModelError(f"model has no input {self._input_name!r}; it has {sorted(inputs)}")
        if self._output_name not in outputs:
            raise OnnxModelError(f"model has no output {self._output_name!r}; it has {outputs}")
        self._declared_input_shape: list[int | str | None] = list(inputs[self._input_name].shape)
        expected_rank = 5 if spec.layout == "volume" else 4
        if len(self._declared_input_shape) != expected_rank:
            raise OnnxModelError(
                f"layout {spec.layout!r} needs a rank-{expected_rank} input, "
                f"the model declares {self._declared_input_shape}"
            )

    @property
    def descriptor(self) -> EngineDescriptor:
        return self.spec.descriptor

    def run(self, volume: VolumeInput) -> EngineResult:
        self.descriptor.check_accepts(volume)
        resampled = self._resample_to_model_spacing(volume)
        model_input = self._model_input(resampled)
        from onnxruntime.capi import onnxruntime_pybind11_state as runtime_errors

        try:
            (raw_output,) = self._session.run([self._output_name], {self._input_name: model_input})
        except (runtime_errors.InvalidArgument, runtime_errors.Fail, runtime_errors.RuntimeException) as error:
            raise OnnxModelError(f"the model failed on an input of shape {model_input.shape}: {error}") from error
        output = np.asarray(raw_output)
        if isinstance(self.spec.output, SegmentationOutput):
            return self._segmentation_result(volume, resampled.shape, output, self.spec.output)
        return self._classification_result(output, self.spec.output)

    # --- input ----------------------------------------------------------------------------------

    def _resample_to_model_spacing(self, volume: VolumeInput) -> NDArray[np.float32]:
        if self.spec.input_spacing_mm is None:
            return volume.voxels
        factors = [source / target for source, target in zip(volume.spacing_mm, self.spec.input_spacing_mm, strict=True)]
        if all(math.isclose(factor, 1.0, rel_tol=1e-3) for factor in factors):
            return volume.voxels
        return ndimage.zoom(volume.voxels, factors, order=1, mode="nearest").astype(np.float32)  # type: ignore[no-any-return]

    def _model_input(self, voxels: NDArray[np.float32]) -> NDArray[np.float32]:
        normalised = self.spec.window.normalise(voxels)
        if self.spec.layout == "volume":
            tensor = normalised[np.newaxis, np.newaxis]
            spatial = tuple(int(n) for n in voxels.shape)
        else:
            tensor = normalised[:, np.newaxis]
            spatial = tuple(int(n) for n in voxels.shape[1:])
        if self.spec.input_shape is not None and tuple(self.spec.input_shape) != spatial:
            raise InputShapeMismatch(
                f"the model requires spatial shape {tuple(self.spec.input_shape)}, the prepared volume is {spatial} "
                f"(after resampling to {self.spec.input_spacing_mm} mm)"
            )
        for axis, (declared, actual) in enumerate(zip(self._declared_input_shape, tensor.shape, strict=True)):
            if isinstance(declared, int) and declared > 0 and declared != actual:
                raise InputShapeMismatch(
                    f"the model's input {self._input_name!r} is declared {self._declared_input_shape}; "
                    f"axis {axis} is {actual} in the prepared input of shape {tuple(tensor.shape)}"
                )
        return np.ascontiguousarray(tensor)

    # --- output ---------------------------------------------------------------------------------

    def _segmentation_result(self, volume: VolumeInput, resampled_shape: tuple[int, ...],
                             output: NDArray[Any], mapping: SegmentationOutput) -> EngineResult:
        scores = _resample_scores(self._class_scores_volume(output, resampled_shape), volume.shape)
        if scores.shape[0] == 1:
            labels = (scores[0] >= mapping.threshold).astype(np.uint16)
        else:
            labels = np.argmax(scores, axis=0).astype(np.uint16)

        findings: list[Finding] = []
        for class_index, class_name in sorted(mapping.labels.items()):
            class_mask = labels == class_index
            if not class_mask.any():
                continue
            if mapping.split_connected_components:
                components, _ = ndimage.label(class_mask, structure=FULL_CONNECTIVITY_3D)
            else:
                components = class_mask.astype(np.int32)
            for component_index, component_slices in enumerate(ndimage.find_objects(components), start=1):
                if component_slices is None:
                    continue
                mask = components[component_slices] == component_index
                volume_mm3 = float(mask.sum()) * volume.voxel_volume_mm3
                if volume_mm3 < mapping.minimum_volume_mm3:
                    continue
                box = VoxelBox(
                    start=tuple(int(s.start) for s in component_slices),  # type: ignore[arg-type]
                    stop=tuple(int(s.stop) for s in component_slices),  # type: ignore[arg-type]
                )
                centroid_local = np.argwhere(mask).mean(axis=0)
                centroid = tuple(float(c + s) for c, s in zip(centroid_local, box.start, strict=True))
                findings.append(Finding(
                    label=class_name,
                    centroid_voxel_zyx=centroid,  # type: ignore[arg-type]
                    centroid_patient_mm=volume.voxel_to_patient(centroid),
                    volume_mm3=volume_mm3,
                    box=box,
                    mask=mask,
                ))
        summary = {
            "engine": self.descriptor.as_json(),
            "finding_count": len(findings),
            "findings": [finding.as_json() for finding in findings],
            "volumes_mm3_by_label": {
                name: round(float((labels == index).sum()) * volume.voxel_volume_mm3, 1)
                for index, name in sorted(mapping.labels.items())
            },
        }
        return EngineResult(engine=self.descriptor, findings=tuple(findings), summary=summary, label_volume=labels)

    def _class_scores_volume(self, output: NDArray[Any], resampled_shape: tuple[int, ...]) -> NDArray[np.float32]:
        """The output as (C, D, H, W) in the resampled grid."""
        if self.spec.layout == "volume":
            if output.ndim != 5 or output.shape[0] != 1:
                raise OutputShapeMismatch(f"a volume segmentation output must be (1, C, D, H, W), got {output.shape}")
            scores = output[0]
        else:
            if output.ndim != 4:
                raise OutputShapeMismatch(f"a slice segmentation output must be (S, C, H, W), got {output.shape}")
            scores = np.moveaxis(output, 1, 0)
        if tuple(scores.shape[1:]) != tuple(resampled_shape):
            raise OutputShapeMismatch(
                f"segmentation output spatial shape {tuple(scores.shape[1:])} differs from the input's {tuple(resampled_shape)}"
            )
        return scores.astype(np.float32, copy=False)

    def _classification_result(self, output: NDArray[Any], mapping: ClassificationOutput) -> EngineResult:
        scores = output.astype(np.float64)
        if scores.ndim == 1:
            scores = scores[:, np.newaxis]
        if scores.ndim != 2 or scores.shape[1] != len(mapping.class_names):
            raise OutputShapeMismatch(
                f"a classification output must be (N, {len(mapping.class_names)}) for classes "
                f"{list(mapping.class_names)}, got {output.shape}"
            )
        if mapping.activation == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-scores))
        elif mapping.activation == "softmax":
            exponentials = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = exponentials / exponentials.sum(axis=1, keepdims=True)
        # One row per batch item: the volume, or each slice (the volume's score is the worst slice).
        volume_scores = scores.max(axis=0)
        findings = tuple(
            Finding(label=name, score=float(score))
            for name, score in zip(mapping.class_names, volume_scores, strict=True)
            if score >= mapping.threshold
        )
        summary = {
            "engine": self.descriptor.as_json(),
            "scores": {name: float(score) for name, score in zip(mapping.class_names, volume_scores, strict=True)},
            "positive": [finding.label for finding in findings],
        }
        return EngineResult(engine=self.descriptor, findings=findings, summary=summary)


def _resample_scores(scores: NDArray[np.float32], shape: tuple[int, int, int]) -> NDArray[np.float32]:
    """Class scores (C, D, H, W) interpolated linearly back onto the volume's grid of ``shape``.

    Scores, not labels, are resampled (as nnU-Net does): labels picked by nearest neighbour
    would shift boundaries by up to a model voxel. The grid convention is the one of
    ``scipy.ndimage.zoom`` used on the way in: first and last voxel centres coincide.
    """
    if tuple(scores.shape[1:]) == tuple(shape):
        return scores
    scale = [
        (source - 1) / (target - 1) if target > 1 else 0.0
        for source, target in zip(scores.shape[1:], shape, strict=True)
    ]
    return np.stack([
        ndimage.affine_transform(channel, scale, output_shape=shape, order=1, mode="nearest")
        for channel in scores
    ]).astype(np.float32, copy=False)
