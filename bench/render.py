"""Render latency of one 512x512 CT slice (WADO-RS /rendered and /thumbnail), on one core.

Each sample starts from the Part 10 bytes as storage returns them (parse + decode + VOI + resize +
encode), over distinct slices so nothing is reused between samples. The target (docs/benchmarks.md "Targets") is a p95
of at most 20 ms for the JPEG case. Run from the repository root:

    .venv/bin/python -m bench.render [--iterations 300] [--slices 40]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

import pydicom
from pydicom.uid import JPEG2000Lossless, RLELossless

from apps.dicom.rendering import RenderOptions, render_frame, render_thumbnail
from bench.measure import latency_summary
from tests.factories.dicom_factory import compressed_copy, make_ct_series, to_part10_bytes

TARGET_P95_MS = 20.0


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def measure(render: Callable[[bytes], bytes], files: list[bytes], iterations: int) -> dict[str, float]:
    seconds = []
    for index in range(iterations):
        data = files[index % len(files)]
        started = time.perf_counter()
        render(data)
        seconds.append(time.perf_counter() - started)
    return latency_summary(seconds)


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--slices", type=int, default=40, help="distinct slices cycled through")
    arguments = parser.parse_args()

    print(pin_to_one_core())
    series = make_ct_series(arguments.slices, rows=512, columns=512, slice_thickness=5.0)
    native = [to_part10_bytes(dataset) for dataset in series]
    jpeg2000 = [to_part10_bytes(compressed_copy(dataset, JPEG2000Lossless)) for dataset in series[:10]]
    rle = [to_part10_bytes(compressed_copy(dataset, RLELossless)) for dataset in series[:10]]

    jpeg = RenderOptions(media_type="image/jpeg", quality=90)
    started = time.perf_counter()
    render_frame(read(native[0]), jpeg)
    print(
        f"first render in this process (imports, plugin set-up): {(time.perf_counter() - started) * 1000:.1f} ms"
    )

    scenarios: list[tuple[str, Callable[[bytes], bytes], list[bytes]]] = [
        ("CT 512x512 native -> JPEG q90", lambda data: render_frame(read(data), jpeg), native),
        (
            "CT native -> JPEG lung window, viewport 256",
            lambda data: render_frame(read(data), RenderOptions(window=(-600, 1500), viewport=(256, 256))),
            native,
        ),
        (
            "CT native -> PNG",
            lambda data: render_frame(read(data), RenderOptions(media_type="image/png")),
            native,
        ),
        ("CT native -> thumbnail 128 JPEG", lambda data: render_thumbnail(read(data)), native),
        ("CT RLE -> JPEG q90", lambda data: render_frame(read(data), jpeg), rle),
        ("CT JPEG 2000 lossless -> JPEG q90", lambda data: render_frame(read(data), jpeg), jpeg2000),
    ]
    print(f"{'scenario':<46} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, render, files in scenarios:
        summary = measure(render, files, arguments.iterations)
        print(
            f"{name:<46} {summary['samples']:>5} {summary['p50_ms']:>8.2f} {summary['p95_ms']:>8.2f} "
            f"{summary['max_ms']:>8.2f}"
        )
        if name.startswith("CT 512x512"):
            verdict = "meets" if summary["p95_ms"] <= TARGET_P95_MS else "MISSES"
            print(f"  -> {verdict} the p95 <= {TARGET_P95_MS:.0f} ms target")


if __name__ == "__main__":
    main()
