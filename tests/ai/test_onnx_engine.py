"""OnnxEngine on tiny models built in the test with onnx.helper, whose outputs are known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from apps.ai.engines.base import EngineDescriptor, OutputKind, VolumeInput
from apps.ai.engines.onnx_engine import (
    ClassificationOutput,
    InputShapeMismatch,
    IntensityWindow,
    ModelFileMissing,
    OnnxEngine,
    OnnxModelError,
    OnnxModelSpec,
    SegmentationOutput,
)

# onnxruntime 1.31 reads models up to IR version 13; onnx 1.23 writes 14 unless told otherwise.
IR_VERSION = 10
OPSET = 17
DESCRIPTOR = EngineDescriptor(
    name="tiny-test-model", version="0.0.1", vendor="tests", description="threshold network",
    modalities=("CT",), body_parts=(), minimum_slices=1, outputs=(OutputKind.SEGMENTATION,),
)
# Window [-200, 200] HU → [0, 1]; 0.5 is 0 HU.
WINDOW = IntensityWindow(center=0.0, width=400.0)


def save_model(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def threshold_segmentation_model(path: Path, spatial: list[int | str], *, dimensions: int = 3) -> Path:
    """A 1×1(×1) convolution with two output channels: background = 0.5 - x, foreground = x - 0.5.

    Its argmax is class 1 exactly where the windowed input exceeds 0.5, i.e. where HU > 0.
    """
    kernel = np.array([-1.0, 1.0], dtype=np.float32).reshape(2, 1, *([1] * dimensions))
    bias = np.array([0.5, -0.5], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["ct", "kernel", "bias"], ["scores"])],
        "threshold",
        [helper.make_tensor_value_info("ct", TensorProto.FLOAT, ["N", 1, *spatial])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2, *spatial])],
        initializer=[numpy_helper.from_array(kernel, "kernel"), numpy_helper.from_array(bias, "bias")],
    )
    return save_model(graph, path)


def mean_intensity_classifier(path: Path) -> Path:
    """Score = mean of the windowed input (GlobalAveragePool then Flatten)."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["ct"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["score"])],
        "mean",
        [helper.make_tensor_value_info("ct", TensorProto.FLOAT, ["N", 1, "D", "H", "W"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
    )
    return save_model(graph, path)


def cube_volume(shape: tuple[int, int, int] = (6, 10, 12), spacing: tuple[float, float, float] = (2.0, 1.0, 1.0)
                ) -> VolumeInput:
    """-1000 HU everywhere but a 2×3×4 block of 100 HU at (2:4, 3:6, 4:8) and one 100 HU voxel apart."""
    voxels = np.full(shape, -1000.0, dtype=np.float32)
    voxels[2:4, 3:6, 4:8] = 100.0
    voxels[5, 0, 0] = 100.0
    return VolumeInput(
        voxels=voxels, spacing_mm=spacing, origin_mm=(-10.0, -20.0, 30.0),
        row_direction=(1.0, 0.0, 0.0), column_direction=(0.0, 1.0, 0.0), slice_direction=(0.0, 0.0, 1.0),
        modality="CT", body_part_examined="CHEST", study_instance_uid="1.2.3", series_instance_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5", sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uids=tuple(f"1.2.3.4.{index}" for index in range(shape[0])),
    )


def test_segmentation_model_labels_exactly_the_voxels_above_the_window_centre(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg.onnx", ["D", "H", "W"])
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      output=SegmentationOutput(labels={1: "Lesion"})))
    volume = cube_volume()

    result = engine.run(volume)

    assert result.label_volume is not None
    np.testing.assert_array_equal(result.label_volume, (volume.voxels > 0).astype(np.uint16))
    block, speck = sorted(result.findings, key=lambda finding: -(finding.volume_mm3 or 0))
    assert block.label == "Lesion"
    assert block.volume_mm3 == 2 * 3 * 4 * 2.0
    assert block.centroid_voxel_zyx == (2.5, 4.0, 5.5)
    # Patient position: x = -10 + 5.5·1, y = -20 + 4·1, z = 30 + 2.5·2.
    assert block.centroid_patient_mm == pytest.approx((-4.5, -16.0, 35.0))
    assert block.box is not None and block.box.start == (2, 3, 4) and block.box.stop == (4, 6, 8)
    assert speck.volume_mm3 == 2.0
    assert result.summary["volumes_mm3_by_label"] == {"Lesion": 50.0}


def test_components_below_the_minimum_volume_are_dropped(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg.onnx", ["D", "H", "W"])
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      output=SegmentationOutput(labels={1: "Lesion"}, minimum_volume_mm3=10.0)))

    result = engine.run(cube_volume())

    assert [finding.volume_mm3 for finding in result.findings] == [48.0]


def test_a_2d_model_runs_slice_by_slice(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg2d.onnx", ["H", "W"], dimensions=2)
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW, layout="slices",
                                      output=SegmentationOutput(labels={1: "Lesion"})))
    volume = cube_volume()

    result = engine.run(volume)

    assert result.label_volume is not None
    np.testing.assert_array_equal(result.label_volume, (volume.voxels > 0).astype(np.uint16))


def test_the_volume_is_resampled_to_the_model_spacing_and_the_labels_mapped_back(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg.onnx", ["D", "H", "W"])
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      input_spacing_mm=(1.0, 1.0, 1.0),
                                      output=SegmentationOutput(labels={1: "Lesion"}, minimum_volume_mm3=10.0)))
    volume = cube_volume(shape=(12, 10, 12))
    volume.voxels[1:7, 3:6, 4:8] = 100.0  # a thicker block: resampling blurs its edge slices

    result = engine.run(volume)

    assert result.label_volume is not None and result.label_volume.shape == volume.shape
    (block,) = result.findings
    assert block.box is not None and block.box.start[1:] == (3, 4) and block.box.stop[1:] == (6, 8)
    assert block.centroid_voxel_zyx == pytest.approx((3.5, 4.0, 5.5), abs=0.5)


def test_classification_score_is_the_models_output(tmp_path: Path) -> None:
    model = mean_intensity_classifier(tmp_path / "cls.onnx")
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      output=ClassificationOutput(class_names=("Dense",), threshold=0.01)))
    volume = cube_volume()

    result = engine.run(volume)

    expected = float(WINDOW.normalise(volume.voxels).mean())  # 25 voxels of 0.75 among 720: 0.026
    assert result.summary["scores"]["Dense"] == pytest.approx(expected, abs=1e-6)
    (finding,) = result.findings
    assert finding.label == "Dense" and finding.score == pytest.approx(expected, abs=1e-6)


def test_a_score_below_the_threshold_is_no_finding(tmp_path: Path) -> None:
    model = mean_intensity_classifier(tmp_path / "cls.onnx")
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      output=ClassificationOutput(class_names=("Dense",), threshold=0.5)))

    result = engine.run(cube_volume())

    assert result.findings == ()
    assert result.summary["positive"] == []


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissing, match="not found: .*absent.onnx"):
        OnnxEngine(OnnxModelSpec(model_path=tmp_path / "absent.onnx", descriptor=DESCRIPTOR, window=WINDOW,
                                 output=SegmentationOutput(labels={1: "Lesion"})))


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a model")

    with pytest.raises(OnnxModelError, match="cannot load garbage.onnx"):
        OnnxEngine(OnnxModelSpec(model_path=path, descriptor=DESCRIPTOR, window=WINDOW,
                                 output=SegmentationOutput(labels={1: "Lesion"})))


def test_a_volume_that_does_not_fit_the_models_fixed_shape_is_refused(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "fixed.onnx", [4, 8, 8])
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                      output=SegmentationOutput(labels={1: "Lesion"})))

    with pytest.raises(InputShapeMismatch, match=r"axis 2 is 6 in the prepared input of shape \(1, 1, 6, 10, 12\)"):
        engine.run(cube_volume())


def test_a_volume_that_does_not_fit_the_declared_input_shape_is_refused(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg.onnx", ["D", "H", "W"])
    engine = OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW, input_shape=(64, 64, 64),
                                      output=SegmentationOutput(labels={1: "Lesion"})))

    with pytest.raises(InputShapeMismatch, match=r"requires spatial shape \(64, 64, 64\), the prepared volume is \(6, 10, 12\)"):
        engine.run(cube_volume())


def test_a_2d_model_declared_as_a_volume_model_is_refused(tmp_path: Path) -> None:
    model = threshold_segmentation_model(tmp_path / "seg2d.onnx", ["H", "W"], dimensions=2)

    with pytest.raises(OnnxModelError, match="rank-5 input"):
        OnnxEngine(OnnxModelSpec(model_path=model, descriptor=DESCRIPTOR, window=WINDOW,
                                 output=SegmentationOutput(labels={1: "Lesion"})))


def test_the_window_maps_center_and_edges_to_half_zero_and_one() -> None:
    window = IntensityWindow(center=40.0, width=400.0)

    np.testing.assert_array_equal(
        window.normalise(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])),
        np.array([0.0, 0.0, 0.5, 1.0, 1.0], dtype=np.float32),
    )
