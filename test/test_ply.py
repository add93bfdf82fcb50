"""4D Gaussians to a 3DGS-style PLY and back; viewers' readers see the positions."""
import numpy as np
import pytest
import torch

from slarm_ros.model import SlarmConfig, SlarmNet
from slarm_ros.ply import PlyError, read_ply
from slarm_ros.stream import Reconstructor
from slarm_ros.random_drive import frame_sets

CFG = SlarmConfig(name="test", image_height=32, image_width=48, patch_size=8, dim=32, depth=2, num_heads=2,
                  semantic_dim=8, attention="window:2")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    eng = Reconstructor(SlarmNet(CFG), device="cpu")
    for fs in frame_sets(3, height=32, width=48):
        eng.step(fs)
    path = eng.export_ply(tmp_path_factory.mktemp("ply") / "window.ply")
    return eng.window_gaussians(), path


def test_round_trip(exported):
    g, path = exported
    back = read_ply(path)
    assert back.num == g.num == 2 * 3 * 16 * 24  # the window: 2 timesteps
    assert back.time_origin == g.time_origin
    torch.testing.assert_close(back.means, g.means)
    torch.testing.assert_close(back.colors, g.colors, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back.opacities, g.opacities, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(back.scales, g.scales, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(back.quats, g.quats / g.quats.norm(dim=1, keepdim=True), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(back.motion, g.motion)
    torch.testing.assert_close(back.t0, g.t0)
    torch.testing.assert_close(back.features, g.features)
    t = g.time_origin + 0.35
    torch.testing.assert_close(back.positions_at(t), g.positions_at(t), atol=1e-5, rtol=1e-5)


def test_header_has_the_3dgs_layout_first(exported):
    _, path = exported
    header = path.read_bytes().split(b"end_header")[0].decode()
    props = [line.split()[-1] for line in header.splitlines() if line.startswith("property")]
    assert props[:17] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                          "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert "motion_8" in props and "t0" in props and "feat_7" in props


def test_open3d_reads_the_positions(exported):
    o3d = pytest.importorskip("open3d")
    g, path = exported
    cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(cloud.points), g.means.numpy(), rtol=1e-6, atol=1e-5)


def test_bad_files(tmp_path, exported):
    _, path = exported
    (tmp_path / "text.ply").write_text("hello")
    with pytest.raises(PlyError, match="not a PLY"):
        read_ply(tmp_path / "text.ply")
    data = path.read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[: len(data) - 100])
    with pytest.raises(PlyError, match="truncated"):
        read_ply(tmp_path / "cut.ply")
    with pytest.raises(PlyError, match="cannot read"):
        read_ply(tmp_path / "missing.ply")
