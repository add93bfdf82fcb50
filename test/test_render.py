"""The renderer: the torch backend against a brute-force float64 reference, and gsplat where CUDA is."""
import pytest
import torch

from render_reference import render_reference
from slarm_ros.geometry import invert_rigid
from slarm_ros.render.rasterize import rasterize, gsplat_available


def small_scene(n=12, views=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * torch.tensor([1.0, 0.6, 0.5], dtype=dtype)
    means[:, 2] += 4.0
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.25 + 0.03
    opacities = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    colors = torch.rand(n, 5, generator=g, dtype=dtype)
    poses = []
    for v in range(views):
        T = torch.eye(4, dtype=dtype)
        angle = torch.tensor(0.15 * v, dtype=dtype)
        T[0, 0], T[0, 2], T[2, 0], T[2, 2] = angle.cos(), angle.sin(), -angle.sin(), angle.cos()
        T[0, 3] = -0.4 * v
        poses.append(T)
    viewmats = invert_rigid(torch.stack(poses))
    Ks = torch.tensor([[14.0, 0, 7.3], [0, 13.0, 4.6], [0, 0, 1]], dtype=dtype).expand(views, 3, 3).clone()
    return means, quats, scales, opacities, colors, viewmats, Ks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_backend_matches_brute_force_values(seed):
    scene = small_scene(seed=seed)
    fast = rasterize(*scene, width=15, height=10, backend="torch")
    ref = render_reference(*scene, width=15, height=10)
    assert fast.alphas.max() > 0.5, "scene should cover pixels"
    torch.testing.assert_close(fast.colors, ref.colors, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fast.alphas, ref.alphas, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(fast.depths, ref.depths, rtol=1e-9, atol=1e-11)


def test_torch_backend_matches_brute_force_gradients():
    scene = [x.clone().requires_grad_(i < 5) for i, x in enumerate(small_scene(n=8, seed=3))]
    weights = torch.rand(2, 10, 15, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(9))

    def grads(fn):
        out = fn(*scene, width=15, height=10)
        loss = (torch.cat([out.colors, out.alphas, out.depths], -1) * weights).sum()
        return torch.autograd.grad(loss, scene[:5])

    fast = grads(lambda *a, **k: rasterize(*a, **k, backend="torch"))
    ref = grads(render_reference)
    for name, gf, gr in zip(["means", "quats", "scales", "opacities", "colors"], fast, ref):
        assert gf.abs().sum() > 0, f"no gradient reaches {name}"
        torch.testing.assert_close(gf, gr, rtol=1e-7, atol=1e-9, msg=lambda m: f"{name}: {m}")


def test_opaque_front_gaussian_hides_the_one_behind_and_depth_is_its_depth():
    dtype = torch.float64
    means = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 5.0]], dtype=dtype)
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=dtype)
    scales = torch.full((2, 3), 1.0, dtype=dtype)
    opacities = torch.tensor([0.999, 0.999], dtype=dtype)
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    viewmats = torch.eye(4, dtype=dtype)[None]
    Ks = torch.tensor([[10.0, 0, 4.0], [0, 10.0, 4.0], [0, 0, 1]], dtype=dtype)[None]
    out = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, 9, 9, backend="torch")
    centre = out.colors[0, 4, 4]
    assert centre[0] > 0.99 and centre[1] < 0.01
    assert out.depths[0, 4, 4, 0] == pytest.approx(2.0, abs=0.01)


def test_gaussians_behind_the_camera_or_beyond_far_are_not_drawn():
    scene = list(small_scene(n=6, views=1))
    scene[0] = scene[0].clone()
    scene[0][:, 2] = -scene[0][:, 2]  # all behind
    out = rasterize(*scene, width=15, height=10, backend="torch")
    assert out.alphas.abs().max() == 0
    scene2 = small_scene(n=6, views=1)
    out = rasterize(*scene2, width=15, height=10, far=1.0, backend="torch")
    assert out.alphas.abs().max() == 0


@pytest.mark.skipif(not gsplat_available(), reason="gsplat's rasterizer needs CUDA; none on this machine")
def test_gsplat_and_torch_backends_agree_on_cuda():
    scene = [x.float().cuda() for x in small_scene(n=200, views=3, seed=4)]
    scene[0] = scene[0] * 0.5 + torch.tensor([0, 0, 2.0], device="cuda")
    ref = rasterize(*scene, width=64, height=48, backend="torch")
    gs = rasterize(*scene, width=64, height=48, backend="gsplat")
    torch.testing.assert_close(gs.alphas, ref.alphas, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(gs.colors, ref.colors, atol=2e-3, rtol=1e-3)
    covered = ref.alphas > 0.5
    torch.testing.assert_close(gs.depths[covered], ref.depths[covered], atol=2e-3, rtol=1e-3)
