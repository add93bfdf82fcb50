"""Loss curves of one or several training runs (their log.csv files) as one PNG."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

PANELS = (("loss", "total loss"), ("rgb_l1", "RGB L1"), ("rgb_ssim", "1 - SSIM"), ("depth", "depth rel. error (render)"),
          ("context_depth", "depth rel. error (own)"), ("semantic", "1 - cos (semantic)"),
          ("semantic_classes", "class cross-entropy (semantic)"), ("sky", "sky BCE"),
          ("motion", "|motion coeff.| per order"), ("dynamic", "mean motion gate"), ("psnr_self", "PSNR own render (dB)"))


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]) for k in rows[0]}


def plot_logs(logs: dict[str, str | Path], out: str | Path, x: str = "step") -> Path:
    """One panel per logged quantity, one line per run (label -> log.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {label: read_log(path) for label, path in logs.items()}
    panels = [(key, title) for key, title in PANELS if any(key in table for table in data.values())]
    rows = max(1, -(-len(panels) // 4))
    fig, axes = plt.subplots(rows, 4, figsize=(16, 3 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (key, title) in zip(axes.flat, panels):
        for label, table in data.items():
            if key in table and x in table:
                ax.plot(table[x], table[key], label=label, linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(x.replace("_", " "), fontsize=8)
        ax.grid(alpha=0.3)
        if key not in ("psnr_self",) and any(np.nanmin(t[key]) > 0 for t in data.values() if key in t):
            ax.set_yscale("log")
    if len(data) > 1:
        axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
