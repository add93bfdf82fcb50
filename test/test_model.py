"""The network learns through rendering: gradients reach every part from a frame at another time."""
import torch
import torch.nn.functional as F

from slarm_ros.gaussians import Gaussians4D
from slarm_ros.model import SlarmConfig, SlarmNet, ViewBatch
from slarm_ros.render.scene import render_gaussians
from slarm_ros.random_drive import frame_sets

CFG = SlarmConfig(name="test", image_height=32, image_width=48, patch_size=8, dim=32, depth=4, num_heads=2,
                  gaussian_stride=2, semantic_dim=8, text_dim=16, motion_degree=3, attention="full")


def batch_from(seq, cfg):
    anchor = torch.as_tensor(seq[0].cameras[0].cam_to_world, dtype=torch.float64).inverse()
    images = torch.stack([torch.stack([torch.from_numpy(c.image).permute(2, 0, 1).float() / 255 for c in fs.cameras])
                          for fs in seq])
    K = torch.stack([torch.stack([torch.as_tensor(c.K, dtype=torch.float32) for c in fs.cameras]) for fs in seq])
    poses = torch.stack([torch.stack([(anchor @ torch.as_tensor(c.cam_to_world)).float() for c in fs.cameras])
                         for fs in seq])
    times = torch.tensor([fs.stamp - seq[0].stamp for fs in seq], dtype=torch.float32)
    return ViewBatch(images, K, poses, times)


def test_gradients_reach_every_parameter_group_through_rendering_at_another_timestamp():
    torch.manual_seed(0)
    net = SlarmNet(CFG)
    seq = frame_sets(3, height=32, width=48, seed=1)
    batch = batch_from(seq, CFG)
    pred = net(ViewBatch(batch.images[:2], batch.K[:2], batch.cam_to_anchor[:2], batch.times[:2]))

    context = Gaussians4D.cat(pred.gaussians)
    target_time = float(batch.times[2])  # a timestep the network never saw
    sky_token = pred.sky_tokens[-1]
    render = render_gaussians(
        context, target_time, batch.cam_to_anchor[2], batch.K[2], 48, 32,
        sky=lambda d: net.sky_head(d, sky_token), affine=pred.affine[-1], with_features=True, backend="torch",
    )
    target = batch.images[2].permute(0, 2, 3, 1)
    text = torch.randn(3, 32, 48, CFG.text_dim)
    semantic = 1 - F.cosine_similarity(net.semantic_projection(render.features), text, dim=-1).mean()
    loss = F.l1_loss(render.rgb, target) + 0.1 * semantic + 0.01 * render.depth.mean()
    loss.backward()

    for group, params in net.parameter_groups().items():
        grads = [p.grad for p in params if p.grad is not None]
        assert grads, f"no gradient reaches {group}"
        assert all(torch.isfinite(g).all() for g in grads), f"non-finite gradient in {group}"
        assert sum(g.abs().sum() for g in grads) > 0, f"zero gradient in {group}"
    # the motion channels of the head get gradient only because the target is at another time
    motion_rows = slice(12, 12 + 3 * CFG.motion_degree)
    assert net.gaussian_head.out.weight.grad[motion_rows].abs().sum() > 0


def test_shipped_configs_build_and_have_the_documented_sizes():
    tiny, base = SlarmConfig.named("slarm-tiny"), SlarmConfig.named("slarm-base")
    assert (base.dim, base.depth, base.patch_size) == (768, 12, 8)
    assert tiny.num_cameras == 3 and tiny.motion_degree == 3
    assert sum(p.numel() for p in SlarmNet(tiny).parameters()) < 5_000_000


def test_query_scores_in_feature_space_equal_the_projected_cosine():
    from slarm_ros.semantics.scores import language_embeddings, query_scores

    torch.manual_seed(1)
    net = SlarmNet(CFG)
    features = torch.randn(50, CFG.semantic_dim)
    text = F.normalize(torch.randn(4, CFG.text_dim), dim=-1)
    expected = language_embeddings(features, net.semantic_projection) @ text.T
    torch.testing.assert_close(query_scores(features, net.semantic_projection, text), expected, rtol=1e-4, atol=1e-5)
