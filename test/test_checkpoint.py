"""Checkpoints round-trip; bad ones fail with a message that names the problem."""
import json

import pytest
import torch
from safetensors.torch import save_file

from slarm_ros.model import SlarmConfig, SlarmNet
from slarm_ros.model.checkpoint import (CheckpointError, checkpoint_notes, init_from_checkpoint, load_checkpoint,
                                       save_checkpoint, with_config)
from slarm_ros.stream import Reconstructor

CFG = SlarmConfig(name="test", image_height=32, image_width=48, patch_size=8, dim=32, depth=2, num_heads=2,
                  semantic_dim=8, text_dim=16)


def saved(tmp_path, cfg=CFG):
    torch.manual_seed(0)
    net = SlarmNet(cfg)
    return net, save_checkpoint(net, tmp_path / "model.safetensors", notes={"steps": 12})


def test_round_trip_keeps_weights_config_and_notes(tmp_path):
    net, path = saved(tmp_path)
    loaded = load_checkpoint(path)
    assert loaded.cfg == CFG
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert checkpoint_notes(path) == {"steps": "12"}
    assert Reconstructor.from_checkpoint(path, device="cpu").cfg == CFG


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_corrupt_and_truncated_files(tmp_path):
    _, path = saved(tmp_path)
    data = path.read_bytes()
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "garbage.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path / "cut.safetensors")


def test_file_without_our_config(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="no 'slarm_config' metadata"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "odd.safetensors"), metadata={"slarm_config": '{"bogus": 1}'})
    with pytest.raises(CheckpointError, match="bogus"):
        load_checkpoint(tmp_path / "odd.safetensors")


def test_config_other_than_expected_names_the_fields(tmp_path):
    _, path = saved(tmp_path)
    with pytest.raises(CheckpointError, match="dim: checkpoint 32, expected 64") as err:
        load_checkpoint(path, expected=CFG.replace(dim=64, num_heads=2))
    assert "another configuration" in str(err.value)


def test_tensors_that_do_not_fit_their_config(tmp_path):
    small = SlarmNet(CFG.replace(semantic_dim=4))
    tensors = {k: v.contiguous() for k, v in small.state_dict().items()}
    tensors["extra.weight"] = torch.zeros(1)
    del tensors["norm.weight"]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"slarm_config": CFG.to_json()})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "bad.safetensors")
    msg = str(err.value)
    assert "missing tensors [norm.weight]" in msg and "unexpected tensors [extra.weight]" in msg
    assert "semantic_projection.weight: checkpoint (16, 4), model (16, 8)" in msg


def test_non_finite_weights(tmp_path):
    net = SlarmNet(CFG)
    tensors = {k: v.contiguous().clone() for k, v in net.state_dict().items()}
    tensors["norm.bias"][0] = float("nan")
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata={"slarm_config": CFG.to_json()})
    with pytest.raises(CheckpointError, match="non-finite weights in \\[norm.bias\\]"):
        load_checkpoint(tmp_path / "nan.safetensors")


def test_fine_tuning_start_copies_shared_tensors_and_keeps_new_ones_fresh(tmp_path):
    matching = CFG.replace(motion_matching=True)
    trained, path = saved(tmp_path, matching)  # a linear matcher gate
    torch.manual_seed(1)
    wider_gate = SlarmNet(matching.replace(match_gate_hidden=4, match_steps_back=3))
    fresh_gate = {k: v.clone() for k, v in wider_gate.state_dict().items() if k.startswith("matcher.gate.")}
    transfer = init_from_checkpoint(wider_gate, path)
    assert transfer.fresh == sorted(fresh_gate) and len(fresh_gate) == 4
    assert transfer.ignored == ["matcher.gate.bias", "matcher.gate.weight"]
    new, old = wider_gate.state_dict(), trained.state_dict()
    for k in transfer.loaded:
        assert torch.equal(new[k], old[k]), k
    for k, v in fresh_gate.items():
        assert torch.equal(new[k], v), k


def test_fine_tuning_start_refuses_networks_that_do_not_correspond(tmp_path):
    _, path = saved(tmp_path)
    with pytest.raises(CheckpointError, match="cannot start this network: shape mismatches"):
        init_from_checkpoint(SlarmNet(CFG.replace(semantic_dim=4)), path)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        init_from_checkpoint(SlarmNet(CFG), tmp_path / "garbage.safetensors")


def test_inference_settings_change_without_touching_the_weights(tmp_path):
    matching = CFG.replace(motion_matching=True)
    net, path = saved(tmp_path, matching)
    out = with_config(path, tmp_path / "hv0.safetensors", head_velocity_scale=0.0, match_steps_back=3)
    changed = load_checkpoint(out)
    assert changed.cfg == matching.replace(head_velocity_scale=0.0, match_steps_back=3)
    assert all(torch.equal(v, changed.state_dict()[k]) for k, v in net.state_dict().items())
    assert json.loads(checkpoint_notes(out)["config_changed"]) == {"head_velocity_scale": 0.0, "match_steps_back": 3}
    assert checkpoint_notes(out)["steps"] == "12"
    again = with_config(out, tmp_path / "hv0-back1.safetensors", match_steps_back=1, static_speed=1.0)
    assert json.loads(checkpoint_notes(again)["config_changed"]) == {"head_velocity_scale": 0.0, "match_steps_back": 1,
                                                                     "static_speed": 1.0}
    with pytest.raises(CheckpointError, match="alters the network's tensors"):
        with_config(path, tmp_path / "x.safetensors", semantic_dim=4)
    with pytest.raises(CheckpointError, match="head_velocity_scale must be in"):
        with_config(path, tmp_path / "x.safetensors", head_velocity_scale=2.0)
    wider = load_checkpoint(with_config(path, tmp_path / "reach.safetensors", match_pool=1, match_radius=4))
    assert (wider.matcher.pool, wider.matcher.radius) == (1, 4)
    with pytest.raises(CheckpointError, match="cannot change the config"):
        with_config(path, tmp_path / "x.safetensors", no_such_field=1)
    assert not (tmp_path / "x.safetensors").exists()


def test_unknown_config_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="slarm-tiny"):
        SlarmConfig.named("slarm-huge")
    assert json.loads(CFG.to_json())["dim"] == 32


def test_slarm_reconfigure_writes_the_copy_and_refuses_bad_settings(tmp_path, capsys):
    from slarm_ros.cli import main

    _, path = saved(tmp_path, CFG.replace(motion_matching=True))
    out = tmp_path / "copy.safetensors"
    assert main(["reconfigure", str(path), str(out), "head_velocity_scale=0", "match_steps_back=5"]) == 0
    assert load_checkpoint(out).cfg.match_steps_back == 5
    assert main(["reconfigure", str(path), str(out), "match_steps_back"]) == 2
    assert main(["reconfigure", str(path), str(out), "dim=48"]) == 2
    assert main(["reconfigure", str(tmp_path / "none.safetensors"), str(out), "match_steps_back=2"]) == 2
    err = capsys.readouterr().err
    assert "is not KEY=VALUE" in err and "alters the network's tensors" in err and "does not exist" in err
