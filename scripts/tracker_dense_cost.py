"""The object tracker's time per timestep in dense traffic, with and without its per-step cap.

Cars in six lanes ahead of the cameras (8 m apart along each lane), each driving at 4-12 m/s one
way or the other and moved by the network fast enough to pass the gate, on the road of
test/test_object_motion.py (its scene builders are reused, so the scene is the one its tests
check). For each count of cars the tracker runs six timesteps with ``object_max_aligned`` at the
shipped 16 and with no cap, alternating, three times; the median time per step (after the first,
which has nothing to track) is printed and saved.

    python scripts/tracker_dense_cost.py --out tracker-dense-cost.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "test"))
from test_object_motion import CAR, ROAD, box, gaussians, road, tracker, views  # noqa: E402

LANES = np.array([-12.0, -8, -4, 4, 8, 12])  # m, left of the cameras


def traffic(n: int, steps: int = 6, dt: float = 0.1) -> list:
    """(Gaussians, stamp) of ``n`` cars driving in LANES, per timestep."""
    rng = np.random.default_rng(0)
    y, x = LANES[np.arange(n) % len(LANES)], 8.0 + 8.0 * (np.arange(n) // len(LANES))
    speed = rng.choice([-1, 1], n) * rng.uniform(4, 12, n)
    out = []
    for k in range(steps):
        t = k * dt
        parts = [(box([xi + vi * t, yi, 0.75], spacing=0.35), CAR, (vi / 4, 0, 0)) for xi, yi, vi in zip(x, y, speed)]
        out.append((gaussians(parts + [(road(), ROAD, (0, 0, 0))], t), t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cars", type=int, nargs="+", default=[5, 15, 30, 60])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {}
    for n in args.cars:
        frames = traffic(n)
        for _ in range(args.repeats):
            for name, cap in (("cap 16", 16), ("no cap", 10**9)):
                track = tracker(attach_m=0.3, max_aligned=cap)
                times = []
                for g, stamp in frames:
                    started = time.perf_counter()
                    track.update(g, stamp, views([0.0, 0, 1.5]))
                    times.append(time.perf_counter() - started)
                result.setdefault(f"{n} cars", {}).setdefault(name, []).append(float(np.median(times[1:]) * 1000))
        line = ", ".join(f"{name} {np.median(runs):.1f} ms" for name, runs in result[f"{n} cars"].items())
        print(f"{n:3d} cars: median per step {line}", flush=True)
    with open(args.out, "w") as f:
        json.dump({"unit": "ms per step, one thread, per run", **result}, f, indent=1)


if __name__ == "__main__":
    main()
