"""A regression guard for the shipped model: its metrics on a small fixed drive, against recorded ones.

``slarm regression`` measures and compares; ``--record`` writes the reference
(``docs/model/regression.json``) after the shipped weights change on purpose.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..world.config import WorldConfig
from ..world.make import make_world_bag
from .evaluate import evaluate

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "model" / "regression.json"
WORLD = WorldConfig(seed=31, seconds=1.2)  # 12 timesteps x 3 cameras at 240x384; seed used nowhere else
# metric -> (absolute tolerance, relative tolerance): float results differ a little across CPUs and threads
TOLERANCES = {"depth_absrel": (0.01, 0.0), "depth_rmse": (0.0, 0.05), "flow_epe3d": (0.0, 0.10),
              "miou": (0.03, 0.0), "psnr_next": (0.3, 0.0)}


def measure(checkpoint: str | None = None) -> dict[str, float]:
    """The guarded metrics of ``checkpoint`` (default: the shipped model) on the fixed drive."""
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        make_world_bag(WORLD, bag, progress=False)
        result = evaluate(bag, Path(tmp) / "eval", checkpoint=checkpoint, device="cpu", panels=0, progress=False)
    return {key: float(result[key]) for key in TOLERANCES}


def compare(measured: dict[str, float], reference: dict[str, float]) -> list[str]:
    """Metrics outside their tolerance, each as a readable line; empty when all agree."""
    problems = []
    for key, (absolute, relative) in TOLERANCES.items():
        allowed = absolute + relative * abs(reference[key])
        if not abs(measured[key] - reference[key]) <= allowed:
            problems.append(f"{key}: measured {measured[key]:.4f}, recorded {reference[key]:.4f} (allowed +-{allowed:.4f})")
    return problems


def load_reference(path: Path = REFERENCE) -> dict[str, float]:
    return json.loads(path.read_text())["metrics"]


def record(metrics: dict[str, float], path: Path = REFERENCE, checkpoint: str = "shipped") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"world": {"seed": WORLD.seed, "seconds": WORLD.seconds}, "checkpoint": checkpoint,
                                "metrics": metrics}, indent=1) + "\n")
    return path
