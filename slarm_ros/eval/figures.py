"""Pictures of an evaluation: per-camera panels, bird's-eye views, latency and memory over time."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..stream import point_products

PALETTE = np.array([[135, 180, 235], [90, 90, 90], [200, 190, 170], [150, 60, 60], [60, 160, 60],
                    [240, 220, 0], [20, 40, 220], [220, 20, 60]], dtype=np.uint8)


def class_colors(labels: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8; ids beyond the palette get hashed colours."""
    extra = np.random.default_rng(7).integers(0, 255, (256, 3), dtype=np.uint8)
    palette = np.concatenate([PALETTE, extra])
    return palette[np.clip(labels, 0, 255 + len(PALETTE))]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panel_figure(panel: dict, names: list[str], path: Path) -> None:
    plt = _plt()
    cams = panel["names"]
    columns = ["input", "next: rendered", "next: real", "depth", "depth (gt)", "semantics", "semantics (gt)",
               "speed", "speed (gt)"]
    fig, axes = plt.subplots(len(cams), len(columns), figsize=(2.2 * len(columns), 1.6 * len(cams) + 0.6),
                             squeeze=False)
    vmax = 60.0
    for i, cam in enumerate(cams):
        gt = panel["gt"].get(cam, {})
        speed = np.linalg.norm(panel["flow"][i], axis=-1)
        cells = [
            (panel["input"][i], {}),
            (panel.get("render_next", [None] * len(cams))[i], {}),
            (panel.get("target_next", [None] * len(cams))[i], {}),
            (panel["depth"][i], dict(cmap="turbo", vmin=0, vmax=vmax)),
            (gt.get("depth"), dict(cmap="turbo", vmin=0, vmax=vmax)),
            (class_colors(panel["classes"][i]), {}),
            (class_colors(gt["semantic"]) if "semantic" in gt else None, {}),
            (speed, dict(cmap="magma", vmin=0, vmax=12)),
            (np.linalg.norm(gt["flow"], axis=-1) if "flow" in gt else None, dict(cmap="magma", vmin=0, vmax=12)),
        ]
        for j, (image, kw) in enumerate(cells):
            ax = axes[i, j]
            ax.axis("off")
            if image is not None:
                ax.imshow(np.clip(image, 0, None) if image.dtype != np.uint8 and image.ndim == 3 else image, **kw)
            if i == 0:
                ax.set_title(columns[j], fontsize=8)
        axes[i, 0].text(-0.05, 0.5, cam, transform=axes[i, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[k] / 255) for k in range(min(len(names), len(PALETTE)))]
    fig.legend(handles, names[: len(handles)], loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.suptitle(f"t = {panel['stamp']:.2f} s   depth 0-{vmax:.0f} m, speed 0-12 m/s", fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def bev_figure(results: list, path: Path, max_points: int = 150_000) -> None:
    """Bird's-eye views: accumulated points coloured by RGB, and the scene flow of moving points."""
    plt = _plt()
    products = [point_products(r, min_opacity=0.3) for r in results]
    xyz = np.concatenate([p.xyz for p in products])
    rgb = np.concatenate([p.rgb for p in products])
    vel = np.concatenate([p.velocity for p in products])
    keep = xyz[:, 2] < 8.0  # above rooftops: noise for a map view
    xyz, rgb, vel = xyz[keep], rgb[keep], vel[keep]
    if len(xyz) > max_points:
        pick = np.random.default_rng(0).choice(len(xyz), max_points, replace=False)
        xyz, rgb, vel = xyz[pick], rgb[pick], vel[pick]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    axes[0].scatter(xyz[:, 0], xyz[:, 1], c=rgb, s=0.4, linewidths=0)
    axes[0].set_title(f"accumulated points, coloured by RGB ({len(products)} timesteps)")
    latest = products[-1]
    speed = np.linalg.norm(latest.velocity[:, :2], axis=1)
    axes[1].scatter(latest.xyz[:, 0], latest.xyz[:, 1], c="0.8", s=0.3, linewidths=0)
    moving = speed > 0.5
    if moving.any():
        idx = np.flatnonzero(moving)[:: max(1, moving.sum() // 600)]
        q = axes[1].quiver(latest.xyz[idx, 0], latest.xyz[idx, 1], latest.velocity[idx, 0], latest.velocity[idx, 1],
                           speed[idx], cmap="plasma", scale=60, width=0.003)
        fig.colorbar(q, ax=axes[1], label="speed (m/s)")
    axes[1].set_title("scene flow of the latest timestep (points moving > 0.5 m/s)")
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timing_figure(timing: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    steps = np.arange(len(timing["latency_ms"]))
    axes[0].plot(steps, timing["latency_ms"], lw=0.8, label="streaming step")
    axes[1].plot(steps, timing["rss_mb"], lw=0.8, label="streaming (process RSS)")
    if "offline_per_step_ms" in timing:
        axes[0].axhline(timing["offline_per_step_ms"], color="C3", ls="--", label="offline, per timestep")
        axes[1].axhline(timing["offline_peak_mem_mb"], color="C3", ls="--", label="offline (after its pass)")
    axes[0].set(xlabel="timestep", ylabel="ms", title="latency per timestep")
    axes[1].set(xlabel="timestep", ylabel="MB", title="memory")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_all(out: Path, panels: list[dict], names: list[str], results: list, timing: dict) -> list[tuple[str, str]]:
    files = []
    for i, panel in enumerate(panels):
        name = f"panel_{i}.png"
        panel_figure(panel, names, out / name)
        files.append((f"cameras at t = {panel['stamp']:.2f} s", name))
    if results:
        bev_figure(results, out / "bev.png")
        files.append(("bird's-eye views", "bev.png"))
    timing_figure(timing, out / "timing.png")
    files.append(("latency and memory over time", "timing.png"))
    return files
