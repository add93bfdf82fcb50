"""Checkpoints: safetensors weights with the network's config (and free-form notes) in the metadata.

Loading checks everything before touching the model and fails with a message that names the
problem: unreadable file, missing or unknown config, a config other than the one asked for,
missing, unexpected or mis-shaped tensors, non-finite weights.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import SlarmConfig
from .network import SlarmNet

CONFIG_KEY = "slarm_config"
FORMAT_KEY = "slarm_format"
FORMAT_VERSION = "1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_checkpoint(model: SlarmNet, path: str | Path, notes: dict[str, str] | None = None) -> Path:
    """Write the model's weights and config to ``path`` (safetensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {FORMAT_KEY: FORMAT_VERSION, CONFIG_KEY: model.cfg.to_json()}
    for key, value in (notes or {}).items():
        metadata[f"note.{key}"] = str(value)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file ({e}); "
                              "re-export it or point the checkpoint parameter at another file") from e


def checkpoint_config(path: str | Path) -> SlarmConfig:
    """The network config stored in a checkpoint."""
    metadata = read_metadata(path)
    if CONFIG_KEY not in metadata:
        raise CheckpointError(f"checkpoint {path} has no '{CONFIG_KEY}' metadata: it was not written by slarm_ros")
    try:
        return SlarmConfig.from_json(metadata[CONFIG_KEY])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} holds a config this version cannot read: {e}") from e


def load_checkpoint(path: str | Path, expected: SlarmConfig | None = None, device: str | torch.device = "cpu") -> SlarmNet:
    """Build the network a checkpoint describes and load its weights.

    ``expected``: if given, the checkpoint's config must equal it (the error lists the fields
    that differ).
    """
    path = Path(path)
    cfg = checkpoint_config(path)
    if expected is not None and cfg != expected:
        diffs = [f"{f.name}: checkpoint {getattr(cfg, f.name)!r}, expected {getattr(expected, f.name)!r}"
                 for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(expected, f.name)]
        raise CheckpointError(f"checkpoint {path} was made for another configuration: " + "; ".join(diffs))
    tensors = _read_tensors(path)
    model = SlarmNet(cfg)
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(tensors))
    unexpected = sorted(set(tensors) - set(wanted))
    misshaped = [f"{k}: checkpoint {tuple(tensors[k].shape)}, model {tuple(wanted[k].shape)}"
                 for k in sorted(set(wanted) & set(tensors)) if tensors[k].shape != wanted[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_few(unexpected)}")
    if misshaped:
        problems.append(f"shape mismatches {_few(misshaped)}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit config '{cfg.name}': " + "; ".join(problems))
    model.load_state_dict(tensors)
    return model.to(device)


@dataclass(frozen=True)
class WeightTransfer:
    """What ``init_from_checkpoint`` did: tensor names loaded, left at their fresh values, ignored."""

    loaded: list[str]
    fresh: list[str]
    ignored: list[str]


def init_from_checkpoint(model: SlarmNet, path: str | Path) -> WeightTransfer:
    """Start ``model`` from another checkpoint's weights (fine-tuning).

    The checkpoint may describe a different configuration: tensors it shares with the model by name
    and shape are copied, the model's other tensors keep their fresh values (a new layer), and the
    checkpoint's other tensors are ignored (a removed one). A shared name of another shape means the
    two networks do not correspond, and is an error, as are an unreadable file and non-finite weights.
    """
    path = Path(path)
    checkpoint_config(path)  # a file this project wrote, with a config this version reads
    tensors = _read_tensors(path)
    wanted = model.state_dict()
    shared = sorted(set(wanted) & set(tensors))
    misshaped = [f"{k}: checkpoint {tuple(tensors[k].shape)}, model {tuple(wanted[k].shape)}"
                 for k in shared if tensors[k].shape != wanted[k].shape]
    if misshaped:
        raise CheckpointError(f"checkpoint {path} cannot start this network: shape mismatches {_few(misshaped)}")
    if not shared:
        raise CheckpointError(f"checkpoint {path} shares no tensor with this network")
    model.load_state_dict({k: tensors[k] for k in shared}, strict=False)
    return WeightTransfer(loaded=shared, fresh=sorted(set(wanted) - set(tensors)),
                          ignored=sorted(set(tensors) - set(wanted)))


def with_config(path: str | Path, out: str | Path, **changes) -> Path:
    """Write a copy of a checkpoint whose config differs in ``changes`` (settings that leave the
    tensors as they are, e.g. ``head_velocity_scale``, ``match_steps_back``, ``match_pool`` or
    ``match_radius``); its notes are kept and the changes noted, after any noted before. A change
    that alters the tensors fails as a mismatched checkpoint."""
    model = load_checkpoint(path)
    notes = checkpoint_notes(path)
    try:
        changed = SlarmNet(model.cfg.replace(**changes))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot change the config of {path}: {e}") from e
    try:
        changed.load_state_dict(model.state_dict())
    except RuntimeError as e:
        raise CheckpointError(f"changing {sorted(changes)} alters the network's tensors; retrain instead") from e
    earlier = json.loads(notes.get("config_changed", "{}"))  # a copy of a copy keeps every change made
    notes["config_changed"] = json.dumps({**earlier, **changes}, sort_keys=True)
    return save_checkpoint(changed, out, notes)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, on the CPU, checked to be finite."""
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: weights cannot be read ({e})") from e
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path} has non-finite weights in {_few(bad)}")
    return tensors


def checkpoint_notes(path: str | Path) -> dict[str, str]:
    """The free-form notes stored with a checkpoint (training command, steps, ...)."""
    return {k[5:]: v for k, v in read_metadata(path).items() if k.startswith("note.")}


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"


__all__ = ["CheckpointError", "WeightTransfer", "save_checkpoint", "load_checkpoint", "init_from_checkpoint",
           "with_config", "checkpoint_config", "checkpoint_notes", "read_metadata"]
