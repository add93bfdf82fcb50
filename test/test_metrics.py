"""Metrics against values computed by hand."""
import math

import numpy as np
import pytest

from slarm_ros.eval import metrics


def test_psnr_full_and_masked():
    gt = np.zeros((2, 2, 3))
    pred = gt.copy()
    pred[0, 0] = 0.1  # 3 of 12 values off by 0.1 -> mse = 0.0025
    assert metrics.psnr(pred, gt) == pytest.approx(10 * math.log10(1 / 0.0025))
    mask = np.array([[True, False], [False, False]])  # only the wrong pixel: mse = 0.01
    assert metrics.psnr(pred, gt, mask) == pytest.approx(20.0)
    assert metrics.psnr(pred, gt, np.zeros((2, 2), bool)) is None
    assert metrics.psnr(gt, gt) == math.inf


def test_ssim_of_identical_and_of_shifted_images():
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(32, 32, 3))
    assert metrics.ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ssim(img, np.clip(img + 0.5, 0, 1)) < 0.9
    # a constant offset c on constant images: luminance term (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    flat = metrics.ssim(np.full((32, 32, 3), a), np.full((32, 32, 3), b))
    assert flat == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)


def test_depth_errors_ignore_invalid_pixels():
    gt = np.array([[10.0, 20.0], [0.0, 5.0]])
    pred = np.array([[11.0, 18.0], [3.0, 5.0]])
    out = metrics.depth_errors(pred, gt)
    assert out["depth_absrel"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert out["depth_rmse"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert out["depth_pixels"] == 3


def test_flow_errors_by_definition():
    gt = np.array([[1.0, 0, 0], [0, 0, 0], [0, 2.0, 0], [0, 0, 0.5]])
    pred = np.array([[1.04, 0, 0], [0.02, 0, 0], [0, 2.15, 0], [0, 0, 0.9]])
    out = metrics.flow_errors(pred, gt)
    err = np.array([0.04, 0.02, 0.15, 0.4])
    rel = np.array([0.04, np.inf, 0.075, 0.8])
    assert out["flow_epe3d"] == pytest.approx(err.mean())
    assert out["flow_acc5"] == pytest.approx(2 / 4)  # 0.04 m; 0.02 m (static point, absolute test)
    assert out["flow_acc10"] == pytest.approx(3 / 4)  # + 0.15 m at 7.5 %
    assert out["flow_outliers"] == pytest.approx(2 / 4)  # static point with error (rel inf) and 0.4 m
    assert (rel > 0.1).sum() == 2
    # moving points: along their true direction 1.04 + 2.15 + 0.9 m of 1 + 2 + 0.5 m; all point the right way
    assert out["flow_recovered_moving"] == pytest.approx((1.04 + 2.15 + 0.9) / 3.5)
    assert out["flow_cosine_moving"] == pytest.approx(1.0)


def test_flow_recovered_and_cosine_tell_short_and_wrong_way_motion():
    gt = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    short = metrics.flow_errors(0.25 * gt, gt)
    assert short["flow_recovered_moving"] == pytest.approx(0.25) and short["flow_cosine_moving"] == pytest.approx(1.0)
    backwards = metrics.flow_errors(-gt, gt)
    assert backwards["flow_recovered_moving"] == pytest.approx(-1.0)
    assert backwards["flow_cosine_moving"] == pytest.approx(-1.0)
    none = metrics.flow_errors(np.zeros_like(gt), gt)
    assert none["flow_recovered_moving"] == 0.0 and np.isnan(none["flow_cosine_moving"])


def test_three_way_flow_split_by_hand():
    # a moving car, a parked car given spurious motion, a wall, and a second moving car
    gt = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 2.0, 0]])
    pred = np.array([[0.5, 0, 0], [0.3, 0.4, 0], [0, 0, 0.01], [0, 2.0, 0]])
    foreground = np.array([True, True, False, True])
    out = metrics.flow_errors(pred, gt, foreground)
    assert out["flow_epe3d_fg_dynamic"] == pytest.approx((0.5 + 0.0) / 2)
    assert out["flow_epe3d_fg_static"] == pytest.approx(0.5)
    assert out["flow_epe3d_background"] == pytest.approx(0.01)
    assert out["flow_epe3d_threeway"] == pytest.approx((0.25 + 0.5 + 0.01) / 3)
    assert out["flow_epe3d"] == pytest.approx((0.5 + 0.5 + 0.01 + 0.0) / 4)  # the pooled mean is unchanged
    # no parked actors: the three-way mean is over the parts that have points
    two = metrics.flow_errors(pred[[0, 2]], gt[[0, 2]], foreground[[0, 2]])
    assert np.isnan(two["flow_epe3d_fg_static"]) and two["flow_epe3d_threeway"] == pytest.approx((0.5 + 0.01) / 2)
    assert "flow_epe3d_threeway" not in metrics.flow_errors(pred, gt)  # only with a foreground mask
    with pytest.raises(ValueError, match="foreground has 2 entries for 4 points"):
        metrics.flow_errors(pred, gt, foreground[:2])


def test_segmentation_scores_by_hand():
    gt = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    conf = metrics.confusion(pred, gt, 4)
    out = metrics.segmentation_scores(conf, ["a", "b", "c", "d"])
    # IoU a: 1/(2+2-1)=1/3; b: 2/(2+3-2)=2/3; c: 1/(2+1-1)=1/2; d absent
    assert out["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert out["semantic_accuracy"] == pytest.approx(4 / 6)
    assert out["iou"]["d"] is None


def test_single_query_thresholds_count_and_pick_the_separating_threshold():
    from slarm_ros.eval.metrics import threshold_counts, threshold_scores

    gt = np.array([0, 0, 1, 1])
    scores = np.array([[0.9, 0.5], [0.8, 0.6], [0.55, 0.9], [0.5, 0.85]])  # class 1 scores 0.5-0.6 on class 0
    counts = threshold_counts(scores, gt, thresholds=(0.4, 0.7))
    assert counts[0].tolist() == [[2, 2, 0], [2, 2, 0]]  # at 0.4 every pixel matches both names
    assert counts[1].tolist() == [[2, 0, 0], [2, 0, 0]]
    scored = threshold_scores(counts, ["a", "b"], thresholds=(0.4, 0.7))
    assert scored["query_miou"] == {"0.40": 0.5, "0.70": 1.0}
    assert scored["query_best_threshold"] == 0.7 and scored["query_best_iou"] == {"a": 1.0, "b": 1.0}
