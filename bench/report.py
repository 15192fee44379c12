"""Figures from phase summaries: the table printed at the end of a run and the JSON written beside it.

Each figure has a value for the platform and for Orthanc, the ratio platform ÷ Orthanc, its target
(docs/benchmarks.md "Targets") and whether this run met it. A figure whose answers were wrong (failed stores, wrong result
counts, non-JPEG renders) is marked with "!" and not judged: a fast wrong answer is not a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PEERS = ("platform", "orthanc")
# A measurement during which other processes used more than this many cores (of the machine's
# two) is marked "~": the machine was shared and the figure is less comparable.
NOISY_OTHER_CORES = 0.25


@dataclass
class Figure:
    key: str
    title: str
    unit: str
    better: str  # "higher" | "lower"
    target: str
    # How the target is judged: ("ratio", bound) against Orthanc, ("absolute", bound) in `unit`,
    # ("at_scale", bound) only meaningful in --qido-scale mode, ("flat", tolerance), or None.
    rule: tuple[str, float] | None
    values: dict[str, float | None]
    suspect: dict[str, str]
    noisy: dict[str, str] = field(default_factory=dict)  # other processes used CPU meanwhile
    phase: str = ""

    @property
    def ratio(self) -> float | None:
        platform, orthanc = self.values.get("platform"), self.values.get("orthanc")
        if platform is None or orthanc is None or not orthanc or math.isnan(platform) or math.isnan(orthanc):
            return None
        return platform / orthanc

    def met(self, *, qido_scale: bool) -> str:
        platform = self.values.get("platform")
        if self.rule is None or platform is None:
            return "–"
        if self.suspect.get("platform") or (self.rule[0] == "ratio" and self.suspect.get("orthanc")):
            return "not judged"
        kind, bound = self.rule
        if kind == "ratio":
            ratio = self.ratio
            if ratio is None:
                return "–"
            return _verdict(ratio >= bound if self.better == "higher" else ratio <= bound)
        if kind == "absolute":
            return _verdict(platform <= bound if self.better == "lower" else platform >= bound)
        if kind == "at_scale":
            if not qido_scale:
                return "(needs --qido-scale)"
            return _verdict(platform <= bound)
        return "–"


def _verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def _get(summary: dict[str, Any] | None, *path: str) -> float | None:
    value: Any = summary
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) else None


def build_figures(phases: dict[str, dict[str, dict[str, Any]]]) -> list[Figure]:
    """`phases[phase][peer]` is a phase summary; returns the figures in table order."""
    figures: list[Figure] = []

    def add(key: str, title: str, unit: str, better: str, target: str, rule: tuple[str, float] | None,
            phase: str, path: tuple[str, ...], suspect_if: tuple[str, ...] = ()) -> None:
        values, suspect, noisy = {}, {}, {}
        for peer in PEERS:
            summary = phases.get(phase, {}).get(peer)
            values[peer] = _get(summary, *path)
            if summary is None:
                continue
            if summary.get("skipped"):
                values[peer] = None
                continue
            for name in suspect_if:
                amount = summary.get(name)
                if amount:
                    suspect[peer] = f"{name}={amount}"
            other = (summary.get("cpu") or {}).get("other_cores", 0.0)
            if other > NOISY_OTHER_CORES:
                noisy[peer] = f"other processes used {other:.2f} cores meanwhile"
        figures.append(Figure(key, title, unit, better, target, rule, values, suspect, noisy, phase))

    add("stow_b50_ips", "STOW-RS batch 50, 4 clients", "instances/s", "higher", "≥ 1.0× Orthanc",
        ("ratio", 1.0), "stow_batch50", ("instances_per_second",), ("failed",))
    add("stow_b50_mbps", "STOW-RS batch 50, 4 clients", "MB/s", "higher", "≥ 1.0× Orthanc",
        ("ratio", 1.0), "stow_batch50", ("megabytes_per_second",), ("failed",))
    add("stow_b1_ips", "STOW-RS batch 1, 1 client", "instances/s", "higher", "≥ 1.0× Orthanc",
        ("ratio", 1.0), "stow_batch1", ("instances_per_second",), ("failed",))
    add("ingest_peak_rss", "peak server RSS during ingest", "MiB", "lower", "flat in the number of instances",
        None, "ingest_memory", ("peak_rss_mib",))
    add("ingest_rss_growth", "server RSS growth, last vs first quarter of batch-50 ingest", "×", "lower",
        "flat (≤ 1.10×, our reading of 'flat')", ("absolute", 1.10), "ingest_memory", ("last_over_first_quarter",))
    for key, title, target in (
        ("qido_patient_id", "QIDO studies by PatientID", "p95 ≤ 20 ms at 10,000 studies / 1,000,000 instances"),
        ("qido_all_limit_100", "QIDO all studies, limit 100", "p95 ≤ 50 ms at 1,000,000 instances"),
        ("qido_date_range", "QIDO StudyDate range", "p95 ≤ 50 ms at 1,000,000 instances"),
        ("qido_modality", "QIDO ModalitiesInStudy", "p95 ≤ 50 ms at 1,000,000 instances"),
        ("qido_name_wildcard", "QIDO PatientName DOE*", "p95 ≤ 50 ms at 1,000,000 instances"),
    ):
        bound = 20.0 if key == "qido_patient_id" else 50.0
        add(f"{key}_p50", f"{title} p50", "ms", "lower", "–", None, key, ("p50_ms",), ("count_mismatches",))
        add(f"{key}_p95", f"{title} p95", "ms", "lower", target, ("at_scale", bound), key, ("p95_ms",),
            ("count_mismatches",))
    add("wado_series_mbps", "WADO-RS series retrieve", "MB/s", "higher", "≥ 1.0× Orthanc", ("ratio", 1.0),
        "wado_series", ("megabytes_per_second",), ("wrong_part_counts",))
    add("wado_first_byte_p95", "WADO-RS series time to first byte p95", "ms", "lower", "≤ 50 ms",
        ("absolute", 50.0), "wado_series", ("first_byte", "p95_ms"), ("wrong_part_counts",))
    add("rendered_cold_p95", "rendered CT frame (JPEG) cold p95", "ms", "lower", "≤ 1.0× Orthanc",
        ("ratio", 1.0), "rendered", ("cold", "p95_ms"), ("render_errors",))
    add("rendered_warm_p95", "rendered CT frame (JPEG) warm p95", "ms", "lower", "≤ 5 ms cached",
        ("absolute", 5.0), "rendered", ("warm", "p95_ms"), ("render_errors",))
    add("metadata_p95", "study metadata (DICOM JSON) p95", "ms", "lower", "≤ 0.5× Orthanc",
        ("ratio", 0.5), "metadata", ("p95_ms",), ("wrong_instance_counts",))
    return figures


def _format(value: float | None, suspect: str | None, noisy: str | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    return text + (" !" if suspect else "") + (" ~" if noisy else "")


def _cell(figure: Figure, peer: str) -> str:
    return _format(figure.values.get(peer), figure.suspect.get(peer), figure.noisy.get(peer))


def table(figures: list[Figure], *, qido_scale: bool) -> str:
    header = ["figure", "unit", "platform", "Orthanc", "ratio", "target", "met"]
    rows = [header]
    for figure in figures:
        ratio = figure.ratio
        rows.append([
            figure.title, figure.unit, _cell(figure, "platform"), _cell(figure, "orthanc"),
            f"{ratio:.2f}×" if ratio is not None else "–", figure.target, figure.met(qido_scale=qido_scale),
        ])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    notes = [f"! {figure.title} ({peer}): {reason}" for figure in figures for peer, reason in figure.suspect.items()]
    noisy_phases: dict[tuple[str, str], str] = {}
    for figure in figures:
        for peer, reason in figure.noisy.items():
            noisy_phases.setdefault((figure.phase, peer), reason)
    notes += [f"~ {phase} ({peer}): {reason}" for (phase, peer), reason in noisy_phases.items()]
    return "\n".join(lines + ([""] + notes if notes else []))


def markdown_table(figures: list[Figure], *, qido_scale: bool) -> str:
    lines = ["| figure | unit | platform | Orthanc | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for figure in figures:
        ratio = figure.ratio
        lines.append(
            f"| {figure.title} | {figure.unit} | {_cell(figure, 'platform')} | {_cell(figure, 'orthanc')} "
            f"| {f'{ratio:.2f}×' if ratio is not None else '–'} | {figure.target} | {figure.met(qido_scale=qido_scale)} |"
        )
    return "\n".join(lines)


def figures_json(figures: list[Figure], *, qido_scale: bool) -> list[dict[str, Any]]:
    return [
        {"key": figure.key, "title": figure.title, "unit": figure.unit, "better": figure.better,
         "platform": figure.values.get("platform"), "orthanc": figure.values.get("orthanc"), "ratio": figure.ratio,
         "target": figure.target, "met": figure.met(qido_scale=qido_scale), "suspect": figure.suspect,
         "noisy": figure.noisy}
        for figure in figures
    ]


def cpu_summary(phases: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """CPU used by other processes (not this benchmark) across all measurements."""
    measured = [(phase, peer, summary["cpu"]) for phase, by_peer in phases.items() for peer, summary in by_peer.items()
                if isinstance(summary, dict) and "cpu" in summary]
    if not measured:
        return {}
    total_seconds = sum(cpu["seconds"] for _, _, cpu in measured)
    worst = max(measured, key=lambda item: item[2]["other_cores"])
    return {
        "other_cores_mean": sum(cpu["other_cores"] * cpu["seconds"] for _, _, cpu in measured) / total_seconds,
        "other_cores_max": worst[2]["other_cores"], "other_cores_max_during": f"{worst[0]} ({worst[1]})",
        "measured_seconds": total_seconds,
    }
