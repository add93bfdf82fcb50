"""The shipped default model: present, loadable, small, and scoring what docs/ says it scores."""
from __future__ import annotations

import pytest

from slarm_ros.model import SlarmConfig
from slarm_ros.model.checkpoint import checkpoint_notes, load_checkpoint
from slarm_ros.stream.reconstructor import DEFAULT_CHECKPOINT, Reconstructor
from slarm_ros.eval import regression


def test_the_shipped_weights_are_the_default_and_fit_slarm_tiny():
    assert DEFAULT_CHECKPOINT.is_file(), "the package must ship its default model"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 25 * 2**20
    model = load_checkpoint(DEFAULT_CHECKPOINT, expected=SlarmConfig.named("slarm-tiny"))
    assert sum(p.numel() for p in model.parameters()) > 0
    notes = checkpoint_notes(DEFAULT_CHECKPOINT)
    assert int(notes["steps"]) > 0 and notes["command"].startswith("slarm train")
    engine = Reconstructor.from_checkpoint(None, device="cpu")
    assert engine.cfg == SlarmConfig.named("slarm-tiny")


def test_its_metrics_on_a_fixed_drive_match_the_recorded_ones():
    reference = regression.load_reference()
    measured = regression.measure()
    assert regression.compare(measured, reference) == [], (measured, reference)


def test_the_guard_catches_a_different_model(tmp_path):
    """Random weights must fail the comparison: the guard is not a test that cannot fail."""
    import torch

    from slarm_ros.model import SlarmNet
    from slarm_ros.model.checkpoint import save_checkpoint

    torch.manual_seed(1)
    path = save_checkpoint(SlarmNet(SlarmConfig.named("slarm-tiny")), tmp_path / "random.safetensors")
    problems = regression.compare(regression.measure(str(path)), regression.load_reference())
    assert problems, "random weights passed the regression guard"
    assert any(p.startswith(("depth_absrel", "miou")) for p in problems)
