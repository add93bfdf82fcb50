"""``slarm train``: the training loop.

One window per process and step; with ``torchrun`` (WORLD_SIZE > 1) each process samples its
own windows and DistributedDataParallel averages the gradients (NCCL on CUDA, gloo on CPU).
A run lives in one folder:
  model.safetensors   the latest weights (a normal checkpoint: the node and ``slarm eval`` take it)
  state.pt            optimiser, step, elapsed time and random states, for ``--resume``
  log.csv             losses, learning rate, gradient norm and speed every ``log_every`` steps
  train_config.yaml   the configuration the run was started with
  summary.json        final figures, and the platform the run trained on
  curves.png          the logged quantities over the steps
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from ..model import SlarmNet
from ..model.checkpoint import CheckpointError, init_from_checkpoint, load_checkpoint, save_checkpoint
from ..stream.reconstructor import DEFAULT_CHECKPOINT, resolve_device
from ..world.config import CLASS_ID, CLASSES, WorldConfig
from .config import TrainConfig
from .curves import plot_logs
from .data import cached_drive, render_missing_drives, sample_window
from .losses import LOSS_TERMS
from .objective import window_loss
from .teacher import ClassNameTeacher

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "elapsed_s", "lr", "loss", *LOSS_TERMS, "psnr_self", "grad_norm",
              "s_per_step", "skipped")


class TrainError(RuntimeError):
    """A training run that cannot start or continue; the message says why."""


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


@contextmanager
def distributed(device: str):
    """Join the process group torchrun set up (if any) and leave it afterwards."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        yield Dist(0, 1, resolve_device(device))
        return
    cuda = torch.cuda.is_available() and device != "cpu"
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        yield Dist(dist.get_rank(), world_size, torch.device(f"cuda:{local}" if cuda else "cpu"))
    finally:
        dist.destroy_process_group()


def training_platform(device: torch.device) -> dict:
    """What a run's numbers depend on besides its config and seed: a run repeats bit for bit with
    the same torch build, kernel set (CPU instruction set or GPU) and thread count, and drifts
    apart over thousands of steps when one of them differs."""
    cuda = device.type == "cuda"
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(device) if cuda else None}


def learning_rate(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio over the run (steps or minutes, whichever ends first)."""
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    progress = step / cfg.steps
    if cfg.minutes > 0:
        progress = max(progress, elapsed_s / (cfg.minutes * 60))
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: SlarmNet, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and convolution kernels only (not on biases, norms, scalars)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    rest = [p for p in trained if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)


class CsvLog:
    """The run's log.csv. Resuming keeps the rows up to ``resumed_step``: rows a killed process
    wrote after its last checkpoint belong to steps that are trained again."""

    def __init__(self, path: Path, append: bool, resumed_step: int = 0):
        self.path = path
        fresh = not (append and path.exists())
        columns, kept = LOG_FIELDS, []
        if not fresh:  # a resumed run keeps its log's columns (an older log may lack a newer loss)
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                columns = reader.fieldnames or LOG_FIELDS
                kept = [row for row in reader if int(float(row["step"])) <= resumed_step]
        tmp = path.with_suffix(".tmp")  # replaced in one move: an interruption here loses no row
        with open(tmp, "w", newline="") as f:
            rewritten = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            rewritten.writeheader()
            rewritten.writerows(kept)
        tmp.replace(path)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")

    def write(self, row: dict) -> None:
        self.writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True, command: str = "",
          stop_after: int | None = None) -> dict:
    """Run (or continue) a training run in ``out``; returns the summary also written to summary.json.

    ``stop_after``: leave after this many steps of this call (for time-sliced jobs); the run is
    resumable and its schedule still spans ``cfg.steps``.
    """
    out = Path(out)
    with distributed(cfg.device) as env:
        return _train(cfg, out, resume, progress and env.main, command, env, stop_after)


def _train(cfg: TrainConfig, out: Path, resume: bool, progress: bool, command: str, env: Dist,
           stop_after: int | None) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state_path, model_path = out / "state.pt", out / "model.safetensors"
    if state_path.exists() and not resume:
        raise TrainError(f"{out} holds a training run already; pass --resume to continue it or choose another folder")
    if resume and not state_path.exists():
        raise TrainError(f"--resume: {out} holds no training state (state.pt)")
    net_cfg = cfg.network()
    torch.manual_seed(cfg.seed + env.rank)
    rng = np.random.default_rng([cfg.seed, env.rank])
    pixel_rng = torch.Generator().manual_seed(cfg.seed * 1000 + env.rank)

    step, elapsed, skipped = 0, 0.0, 0
    if resume:
        model = load_checkpoint(model_path, expected=net_cfg)
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged file raises pickle, zip or runtime errors, depending on where
            raise TrainError(f"{state_path} cannot be read ({type(e).__name__}: {e}); restore it, or start a new "
                             f"run in another folder (the weights in {model_path} are not touched)") from e
    else:
        model = SlarmNet(net_cfg)
        state = None
        if cfg.init_from:
            _init_weights(model, cfg.init_from, env)
    model = model.to(env.device).train()
    _freeze_other_parts(model, cfg.train_parts)
    optimizer = make_optimizer(model, cfg)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, skipped = int(state["step"]), float(state["elapsed_s"]), int(state["skipped"])
        rngs = state["rng"][env.rank] if env.rank < len(state["rng"]) else None
        if rngs is not None:
            rng.bit_generator.state = rngs["numpy"]
            torch.set_rng_state(rngs["torch"])
            pixel_rng.set_state(rngs["pixels"])
    forward = model
    if env.world_size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None)

    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    drives = _load_drives(cfg, net_cfg.image_height, net_cfg.image_width, env, progress)
    teacher = ClassNameTeacher(CLASSES, env.device)
    csv_log = CsvLog(out / "log.csv", append=resume, resumed_step=step) if env.main else None

    def save() -> None:
        if not env.main:
            return
        notes = {"steps": step, "train_seconds": round(elapsed, 1), "train_config": json.dumps(cfg.to_dict()),
                 "command": command}
        save_checkpoint(model, model_path, notes)
        rngs = [{"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(), "pixels": pixel_rng.get_state()}]
        tmp = state_path.with_suffix(".tmp")
        torch.save({"step": step, "elapsed_s": elapsed, "skipped": skipped, "optimizer": optimizer.state_dict(),
                    "rng": rngs}, tmp)
        tmp.replace(state_path)

    hz = cfg.world.get("hz", WorldConfig.hz)
    max_anchor_lag = int(round(cfg.anchor_lag_s * hz))
    interval: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {net_cfg.name}", unit="step", disable=not progress)
    first_step = step
    try:
        last_step = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
        while step < last_step and not _time_up(cfg, elapsed, env):
            started = time.perf_counter()
            lr = learning_rate(cfg, step, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            drive = drives[int(rng.integers(len(drives)))]
            length = cfg.window_length(rng)
            window = sample_window(drive, rng, length, cfg.future, cfg.other_scale, net_cfg.gaussian_stride,
                                   max_anchor_lag, cfg.own_last_share, env.device, cfg.other_target)
            result = window_loss(model, window, teacher, cfg.losses, CLASS_ID["sky"], cfg.max_semantic_pixels,
                                 forward=forward, generator=pixel_rng)
            optimizer.zero_grad(set_to_none=True)
            result.total.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            if math.isfinite(float(result.total.detach())) and math.isfinite(grad_norm):
                optimizer.step()
            else:  # one bad window must not poison the weights
                skipped += 1
                log.warning("step %d: non-finite loss or gradient; the update was skipped", step)
            step += 1
            elapsed += time.perf_counter() - started
            _accumulate(interval, result, grad_norm)
            bar.update(1)
            if csv_log and (step % cfg.log_every == 0 or step == cfg.steps):
                row = _row(interval, step, elapsed, lr, skipped)
                csv_log.write(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", psnr=f"{row['psnr_self']:.1f}")
                interval = {}
            if step % cfg.checkpoint_every == 0:
                save()
        if csv_log and interval:  # the steps since the last row, so that a resumed log misses nothing
            csv_log.write(_row(interval, step, elapsed, lr, skipped))
        save()
    finally:
        bar.close()
        if csv_log:
            csv_log.close()
    summary = {"steps": step, "steps_this_run": step - first_step, "train_seconds": elapsed,
               "s_per_step": elapsed / max(step, 1), "skipped_updates": skipped, "processes": env.world_size,
               "device": str(env.device), "platform": training_platform(env.device),
               "config": cfg.to_dict(), "network": net_cfg.name,
               "final": _final_losses(out / "log.csv") if env.main else {}}
    if env.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        plot_logs({net_cfg.name: out / "log.csv"}, out / "curves.png")
    return summary


def _freeze_other_parts(model: SlarmNet, parts: list[str]) -> None:
    """Train only ``parts`` (all when empty); the other parameters get no gradient."""
    if not parts:
        return
    groups = model.parameter_groups()
    unknown = sorted(set(parts) - set(groups))
    if unknown:
        raise TrainError(f"train_parts {unknown} are not parts of this network; it has {sorted(groups)}")
    for name, params in groups.items():
        for p in params:
            p.requires_grad_(name in parts)


def _init_weights(model: SlarmNet, init_from: str, env: Dist) -> None:
    path = DEFAULT_CHECKPOINT if init_from == "shipped" else Path(init_from)
    try:
        transfer = init_from_checkpoint(model, path)
    except CheckpointError as e:
        raise TrainError(f"init_from: {e}") from e
    if env.main:
        log.info("started from %s: %d tensors loaded, %d fresh %s, %d of the checkpoint's ignored %s", path,
                 len(transfer.loaded), len(transfer.fresh), transfer.fresh, len(transfer.ignored), transfer.ignored)


def _load_drives(cfg: TrainConfig, height: int, width: int, env: Dist, progress: bool):
    """Every process needs every drive; the first renders missing ones into the cache, the others wait."""
    def load(bar: bool):
        if cfg.cache_dir is not None:
            render_missing_drives([cfg.drive(i) for i in range(cfg.num_drives)], height, width, cfg.cache_dir,
                                  cfg.supersample)
        return [cached_drive(cfg.drive(i), height, width, cfg.cache_dir, cfg.supersample)
                for i in tqdm(range(cfg.num_drives), desc="drives", unit="drive", disable=not bar)]

    if env.world_size == 1:
        return load(progress)
    if env.main:
        drives = load(progress)
        dist.barrier()
        return drives
    dist.barrier()
    return load(False)


def _time_up(cfg: TrainConfig, elapsed: float, env: Dist) -> bool:
    if cfg.minutes <= 0:
        return False
    up = torch.tensor(float(elapsed >= cfg.minutes * 60))
    if env.world_size > 1:  # every process stops at the same step, or DDP would hang
        up = up.to(env.device)
        dist.broadcast(up, 0)
    return bool(up.item())


def _accumulate(interval: dict[str, float], result, grad_norm: float) -> None:
    values = {"loss": float(result.total.detach()), "psnr_self": result.psnr_self, "grad_norm": grad_norm,
              **{k: float(v) for k, v in result.parts.items()}}
    for k, v in values.items():
        interval[k] = interval.get(k, 0.0) + v
    interval["n"] = interval.get("n", 0) + 1


def _row(interval: dict[str, float], step: int, elapsed: float, lr: float, skipped: int) -> dict:
    n = max(interval.pop("n", 1), 1)
    row = {k: v / n for k, v in interval.items()}
    row.update(step=step, elapsed_s=elapsed, lr=lr, skipped=skipped, s_per_step=elapsed / max(step, 1))
    return row


def _final_losses(path: Path, rows: int = 10) -> dict:
    """Mean of the last ``rows`` logged rows (the end of the run, smoothed)."""
    with open(path) as f:
        table = list(csv.DictReader(f))[-rows:]
    if not table:
        return {}
    keys = [k for k in LOG_FIELDS if k not in ("step", "elapsed_s", "lr", "skipped", "s_per_step") and k in table[0]]
    return {k: float(np.mean([float(r[k]) for r in table])) for k in keys}
