"""``slarm bench engine``: latency and memory per timestep, streaming vs offline, by sequence length.

Each (mode, T) runs in a fresh process so that its peak memory is its own. Streaming runs T
steps through the K/V window and reports the distribution of per-step latencies; offline runs
the T timesteps in one pass with full attention and reports the pass time divided by T. The
memory figure is the process's peak (RSS on the CPU, allocated memory on CUDA); beside it, the
growth of that peak over its value after the model was loaded and warmed up. Streaming inputs
are made one frame at a time, so neither counts the input sequence; offline holds it all.
Offline lengths whose estimated time exceeds the budget are skipped and recorded as such.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_LENGTHS = (10, 50, 100, 200, 400)
INPUT_SIZE = (480, 768)  # camera images fed to the engine (height, width), resized inside
FLOPS_TIMEOUT_S = 300.0  # the FLOP count and the network-alone timing: a few steps of one timestep


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _engine(args):
    from ..stream import Reconstructor

    return Reconstructor.from_checkpoint(args.checkpoint or None, device=args.device)


def run_worker(args) -> dict:
    """One (mode, T) measurement in this process."""
    from ..random_drive import drive

    torch.manual_seed(0)
    if args.mode == "flops":
        flops, step_s = step_flops(args)
        return {"mode": "flops", "flops": flops, "step_s": step_s}
    engine = _engine(args)
    frames = drive(args.T + 1, cameras=engine.cfg.num_cameras, height=INPUT_SIZE[0], width=INPUT_SIZE[1],
                   image_pool=8)
    engine.step(next(frames))  # warm-up: first-call allocations are not the sequence's cost
    engine.reset()
    if args.mode == "offline":
        frames = list(frames)  # offline needs the whole sequence at once
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(engine.device)
    base = _peak_mb(engine.device)
    if args.mode == "streaming":
        latencies = []
        for fs in frames:  # made one at a time: the input sequence is not the engine's memory
            t = time.perf_counter()
            engine.step(fs)
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            latencies.append(time.perf_counter() - t)
        lat = np.array(latencies) * 1000
        result = {"p50_ms": float(np.median(lat)), "p95_ms": float(np.percentile(lat, 95)),
                  "max_ms": float(lat.max()), "latencies_ms": [round(x, 3) for x in lat.tolist()],
                  "rebases": engine.rebases}
    else:
        t = time.perf_counter()
        engine.run_offline(frames, "full")
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - t) / len(frames) * 1000
        result = {"p50_ms": per_step, "p95_ms": per_step, "max_ms": per_step, "total_s": per_step * len(frames) / 1000}
    peak = _peak_mb(engine.device)
    result.update(mode=args.mode, T=args.T, peak_mem_mb=peak, peak_mem_growth_mb=max(0.0, peak - base))
    return result


def step_flops(args) -> tuple[float, float]:
    """FLOPs of one streaming step with a full window, and that step's median latency (s)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..random_drive import frame_sets

    engine = _engine(args)
    window = engine.window or 1
    seq = frame_sets(window + 10, cameras=engine.cfg.num_cameras, height=INPUT_SIZE[0], width=INPUT_SIZE[1])
    for fs in seq[:window]:
        engine.step(fs)
    with torch.inference_mode():
        prepared = engine.prepare(seq[window])
        batch = engine._batch([prepared])
        saved = list(engine.cache.layers)
        counter = FlopCounterMode(display=False)
        with counter:
            engine.model.step(batch, engine.cache)
        times = []
        for _ in range(10):
            engine.cache.layers = list(saved)
            t = time.perf_counter()
            engine.model.step(batch, engine.cache)
            if engine.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return float(counter.get_total_flops()), float(np.median(times))


def _spawn(args, mode: str, T: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "slarm_ros.eval.bench_engine", "--worker", mode, str(T), "--device", args.device]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"benchmark worker {mode} T={T} did not finish within {timeout:.0f} s "
                           f"(its limit follows --budget-s)") from None
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {mode} T={T} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args) -> dict:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine(args)
    results = []
    for T in args.lengths:
        r = _spawn(args, "streaming", T, timeout=args.budget_s * 4)
        print(f"streaming T={T:4d}: p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
              f"peak {r['peak_mem_mb']:7.1f} MB (+{r['peak_mem_growth_mb']:.1f})", flush=True)
        results.append(r)
    last = None
    for T in args.lengths:
        if last is not None:
            estimate = last["total_s"] * (T / last["T"]) ** 2  # attention over all tokens is quadratic
            if estimate > args.budget_s:
                print(f"offline   T={T:4d}: skipped, estimated {estimate:.0f} s > budget {args.budget_s:.0f} s",
                      flush=True)
                results.append({"mode": "offline", "T": T, "skipped": True, "estimated_total_s": estimate})
                continue
        r = _spawn(args, "offline", T, timeout=args.budget_s * 4)
        print(f"offline   T={T:4d}: {r['p50_ms']:7.1f} ms per timestep ({r['total_s']:.1f} s)  "
              f"peak {r['peak_mem_mb']:7.1f} MB (+{r['peak_mem_growth_mb']:.1f})", flush=True)
        results.append(r)
        last = r
    # a few network steps whatever the offline budget: a small --budget-s must not starve them
    measured = _spawn(args, "flops", 0, timeout=max(args.budget_s, FLOPS_TIMEOUT_S))
    flops, step_s = measured["flops"], measured["step_s"]
    streaming = {r["T"]: r for r in results if r["mode"] == "streaming"}
    lo, hi = min(streaming), max(streaming)
    report = {
        "device": str(engine.device),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": torch.get_num_threads(),
        "config": engine.cfg.name,
        "cameras": engine.cfg.num_cameras,
        "network_input": [engine.cfg.image_height, engine.cfg.image_width],
        "camera_input": list(INPUT_SIZE),
        "window": engine.window,
        "results": results,
        "gflops_per_step": flops / 1e9,
        "achieved_gflops": flops / 1e9 / step_s,
        "network_step_ms": step_s * 1000,
        "ratios": {
            f"streaming_p50_T{hi}_over_T{lo}": streaming[hi]["p50_ms"] / streaming[lo]["p50_ms"],
            f"streaming_peak_mem_T{hi}_over_T{lo}": streaming[hi]["peak_mem_mb"] / streaming[lo]["peak_mem_mb"],
        },
    }
    print(f"network: {report['gflops_per_step']:.2f} GFLOP per step, {report['achieved_gflops']:.1f} GFLOP/s "
          f"({report['network_step_ms']:.1f} ms)")
    for k, v in report["ratios"].items():
        print(f"{k}: {v:.3f}")
    (out_dir / "engine.json").write_text(json.dumps(report, indent=1))
    plot(report, out_dir / "engine.png")
    print(f"wrote {out_dir / 'engine.json'} and {out_dir / 'engine.png'}")
    return report


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in (("streaming", "o-"), ("offline", "s--")):
        rows = [r for r in report["results"] if r["mode"] == mode and not r.get("skipped")]
        if not rows:
            continue
        T = [r["T"] for r in rows]
        axes[0].plot(T, [r["p50_ms"] for r in rows], style, label=f"{mode} p50")
        if mode == "streaming":
            axes[0].plot(T, [r["p95_ms"] for r in rows], ":", label="streaming p95")
        axes[1].plot(T, [r["peak_mem_mb"] for r in rows], style, label=mode)
    axes[0].set(xscale="log", yscale="log", xlabel="sequence length T (timesteps)", ylabel="ms per timestep",
                title="latency per timestep")
    axes[1].set(xscale="log", yscale="log", xlabel="sequence length T (timesteps)", ylabel="MB",
                title="process peak memory")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{report['config']}, {report['cameras']} cameras, {report['device']}, window {report['window']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/bench", help="folder for engine.json and engine.png")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--checkpoint", default="", help="weights to time (default: the shipped model)")
    parser.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")], default=list(DEFAULT_LENGTHS),
                        help="sequence lengths, comma-separated")
    parser.add_argument("--budget-s", type=float, default=150.0, help="longest offline run to attempt, seconds")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.mode, args.T = args.worker[0], int(args.worker[1])
        print(json.dumps(run_worker(args)))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
