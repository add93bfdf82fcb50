"""report.md of an evaluation: the metrics beside the baselines, how it was run, the figures."""
from __future__ import annotations

import math
from pathlib import Path

ROWS = [
    ("depth_absrel", "depth AbsRel", "lower"), ("depth_rmse", "depth RMSE (m)", "lower"),
    ("flow_epe3d", "scene flow EPE3D (m per frame)", "lower"),
    ("flow_epe3d_moving", "EPE3D on moving points", "lower"), ("flow_epe3d_static", "EPE3D on static points", "lower"),
    ("flow_epe3d_fg_dynamic", "EPE3D, moving cars and pedestrians", "lower"),
    ("flow_epe3d_fg_static", "EPE3D, standing cars and pedestrians", "lower"),
    ("flow_epe3d_background", "EPE3D, background", "lower"),
    ("flow_epe3d_threeway", "three-way EPE3D (mean of the three above)", "lower"),
    ("flow_recovered_moving", "share of true motion recovered, moving points", "higher"),
    ("flow_cosine_moving", "median cosine to true motion, moving points", "higher"),
    ("flow_acc5", "flow Acc5", "higher"),
    ("flow_acc10", "flow Acc10", "higher"), ("flow_outliers", "flow outliers", "lower"),
    ("miou", "semantic mIoU (by text query)", "higher"), ("semantic_accuracy", "semantic accuracy", "higher"),
    ("psnr_next", "next-frame PSNR (dB)", "higher"), ("psnr_next_dynamic", "next-frame PSNR, dynamic (dB)", "higher"),
    ("ssim_next", "next-frame SSIM", "higher"),
]

FLOW_RELATIVE_NOTE = ("Flow Acc5, Acc10 and outliers also test the error relative to the true motion: on a static "
                      "point any predicted motion fails that test, so these three favour predicting no motion; "
                      "compare motion with EPE3D on moving and static points.")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # NaN: undefined, e.g. no motion to compare
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def write(path: Path, result: dict, figures: list[tuple[str, str]]) -> None:
    run = result["run"]
    base = result["baselines"]
    lines = [
        f"# Evaluation of {Path(run['bag']).name}",
        "",
        f"- mode: {run['mode']}; model: {run['config']} ({run['checkpoint']}); device: {run['device']}",
        f"- timesteps: {run['timesteps']}, frame interval {run['frame_interval_s']:.3f} s; "
        f"scored at {run['eval_resolution'][0]}x{run['eval_resolution'][1]}",
        f"- streaming step: p50 {result['step_p50_ms']:.1f} ms, p95 {result['step_p95_ms']:.1f} ms; "
        f"peak memory {result['peak_mem_mb']:.0f} MB; scoring {run['scoring_s_per_step']:.2f} s per timestep",
    ]
    if "offline_total_s" in run:
        lines.append(f"- offline pass: {run['offline_total_s']:.1f} s ({run['offline_per_step_ms']:.0f} ms per timestep)")
    if run["skipped"]:
        lines.append(f"- skipped: {len(run['skipped'])} (first: {run['skipped'][0]})")
    lines += ["", "| metric | SLARM | zero motion | last frame copied | better |", "| --- | --- | --- | --- | --- |"]
    for key, label, better in ROWS:
        lines.append(f"| {label} | {_fmt(result.get(key))} | {_fmt(base['zero_motion'].get(key))} | "
                     f"{_fmt(base['copy_last'].get(key))} | {better} |")
    lines += ["", FLOW_RELATIVE_NOTE]
    if result.get("iou"):
        lines += ["", "Per-class IoU: " + ", ".join(f"{k} {_fmt(v)}" for k, v in result["iou"].items())]
    if result.get("query_miou"):
        lines += ["", "One class name queried at a time with a score threshold, as the node's `~/query` does "
                  "(mIoU by threshold): " + ", ".join(f"{t} {v:.3f}" for t, v in result["query_miou"].items()),
                  "", f"Best threshold {result['query_best_threshold']:.2f} (mIoU {result['query_best_miou']:.3f}): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in result["query_best_iou"].items())]
    lines += ["", "Definitions: `slarm_ros/eval/metrics.py`; what is rendered and compared: `slarm_ros/eval/evaluate.py`.", ""]
    for title, name in figures:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    path.write_text("\n".join(lines))


COMPARE_COLUMNS = [("depth_absrel", "depth AbsRel"), ("flow_epe3d", "EPE3D (m)"), ("zero_epe3d", "zero-motion EPE3D"),
                   ("flow_epe3d_moving", "EPE3D moving"), ("flow_epe3d_static", "EPE3D static"),
                   ("flow_epe3d_fg_static", "EPE3D standing actors"), ("flow_acc5", "Acc5"),
                   ("miou", "mIoU"), ("psnr_next", "next PSNR (dB)"),
                   ("psnr_next_dynamic", "next PSNR dyn. (dB)"), ("copy_psnr", "copy-last PSNR (dB)")]


def comparison_table(runs: dict[str, dict]) -> str:
    """A markdown table of several evaluations (label -> metrics.json content), one row each."""
    lines = ["| run | " + " | ".join(title for _, title in COMPARE_COLUMNS) + " |",
             "| --- |" + " --- |" * len(COMPARE_COLUMNS)]
    for label, result in runs.items():
        values = dict(result, zero_epe3d=result["baselines"]["zero_motion"].get("flow_epe3d"),
                      copy_psnr=result["baselines"]["copy_last"].get("psnr_next"))
        lines.append(f"| {label} | " + " | ".join(_fmt(values.get(key)) for key, _ in COMPARE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"
