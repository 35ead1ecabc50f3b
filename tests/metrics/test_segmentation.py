"""Segmentation metrics (Otsu labels, Dice/IoU, porosity) and the phantom's true phases."""

from __future__ import annotations

import numpy as np
import pytest

import tomochunk as tc
from tomochunk.errors import InputError
from tomochunk.metrics.segmentation import (
    dice_iou,
    otsu_labels,
    porosity_error,
    score_segmentation,
    threshold_labels,
)
from tomochunk.phantom import (
    lattice_labels,
    lattice_mask,
    phase_labels,
    phase_thresholds,
    sample_mask,
)


def test_dice_iou_of_a_shifted_square_is_known():
    truth = np.zeros((10, 10), np.int8)
    truth[:, :5] = 1  # 50 voxels of phase 1
    labels = np.zeros((10, 10), np.int8)
    labels[:, :4] = 1  # 40 voxels, all inside the true phase
    dice, iou = dice_iou(labels, truth)
    assert dice[1] == pytest.approx(2 * 40 / 90)
    assert iou[1] == pytest.approx(40 / 50)
    assert dice[0] == pytest.approx(2 * 50 / 110)
    assert iou[0] == pytest.approx(50 / 60)
    assert porosity_error(labels, truth, pore=0) == pytest.approx(0.6 - 0.5)


def test_ignored_voxels_and_absent_phases():
    truth = np.array([0, 0, 1, 1, -1])
    labels = np.array([0, 1, 1, 1, 0])
    dice, iou = dice_iou(labels, truth, n_phases=3)
    assert dice[0] == pytest.approx(2 / 3)
    assert iou[1] == pytest.approx(2 / 3)
    assert np.isnan(dice[2])


def test_otsu_separates_noisy_two_and_three_phase_images():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 400).reshape(30, 40)
    img = truth * 1.0 + rng.normal(0, 0.15, truth.shape)
    labels = otsu_labels(img, 3)
    dice, _ = dice_iou(labels, truth)
    assert np.all(dice > 0.99)
    two = otsu_labels(img, 2, mask=truth != 1)
    assert np.all(two[truth == 1] == -1)
    assert np.mean(two[truth == 0] == 0) > 0.99 and np.mean(two[truth == 2] == 1) > 0.99
    # heavier noise costs Dice: the score can fail
    worse = otsu_labels(truth + rng.normal(0, 0.6, truth.shape), 3)
    assert dice_iou(worse, truth)[0].mean() < 0.8


def test_score_segmentation_on_the_phantom_lattice():
    spec = tc.ScanSpec(n_z=16, n_xy=64, n_angles=8, lattice_period=5.0)
    truth = tc.phantom.make_truth(spec)
    labels = lattice_labels(spec, truth)
    assert np.array_equal(labels >= 0, lattice_mask(spec))
    porosity = np.mean(labels[labels >= 0] == 0)
    assert 0.1 < porosity < 0.3  # holes of radius 0.3 p, walls between segments
    exact = score_segmentation(truth, labels)
    # Otsu of the noise-free truth: only partial-volume voxels at hole edges disagree
    assert exact.mean_dice > 0.93 and abs(exact.porosity_error) < 0.05
    noisy = truth + np.random.default_rng(1).normal(0, 0.5 * spec.mu, truth.shape)
    worse = score_segmentation(noisy, labels)
    assert worse.mean_dice < exact.mean_dice - 0.1
    assert set(worse.to_dict()) == {"dice", "iou", "mean_dice", "mean_iou", "porosity_error"}
    phases = phase_labels(spec, truth)
    assert np.array_equal(phases >= 0, sample_mask(spec))
    assert all(np.any(phases == k) for k in range(3))


def test_multi_otsu_mis_splits_a_rare_phase_that_fixed_thresholds_keep():
    # the phantom's low phase is ~3 % of the sample: multi-Otsu, which favours classes of
    # comparable size, moves a threshold into the large middle phase instead
    rng = np.random.default_rng(0)
    truth = rng.choice(3, 20000, p=[0.03, 0.74, 0.23]).astype(np.int8)
    vol = np.array([0.5, 1.0, 1.6])[truth] + rng.normal(0, 0.1, truth.shape)
    otsu = dice_iou(otsu_labels(vol, 3), truth)[0]
    fixed = dice_iou(threshold_labels(vol, [0.75, 1.3]), truth)[0]
    assert otsu[0] < 0.5 < 0.9 < fixed[0]
    assert np.all(fixed > 0.9)
    labels = threshold_labels(vol, [0.75, 1.3], mask=truth != 2)
    assert np.all(labels[truth == 2] == -1) and set(np.unique(labels)) == {-1, 0, 1, 2}


def test_phase_thresholds_reproduce_the_phantom_phases():
    spec = tc.ScanSpec(n_z=8, n_xy=64, n_angles=8)
    truth = tc.phantom.make_truth(spec)
    phases = phase_labels(spec, truth)
    exact = score_segmentation(truth, phases, thresholds=phase_thresholds(spec))
    assert exact.dice == [1.0, 1.0, 1.0] and exact.porosity_error == 0.0
    # the same thresholds on a noisy copy lose Dice, most in the rare low phase
    noisy = truth + np.random.default_rng(2).normal(0, 0.3 * spec.mu, truth.shape)
    worse = score_segmentation(noisy, phases, thresholds=phase_thresholds(spec))
    assert worse.mean_dice < 0.95 and worse.dice[0] == min(worse.dice)


def test_bad_input_is_one_line_error():
    with pytest.raises(InputError, match="n_phases"):
        otsu_labels(np.arange(10.0), 1)
    with pytest.raises(InputError, match="shape"):
        dice_iou(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match="fewer than 2 phases"):
        score_segmentation(np.zeros(4), np.zeros(4, np.int8))
    with pytest.raises(InputError, match="strictly increasing"):
        threshold_labels(np.arange(4.0), [2.0, 1.0])
    with pytest.raises(InputError, match="2 thresholds for 2 true phases; give 1"):
        score_segmentation(np.arange(4.0), np.array([0, 0, 1, 1]), thresholds=[1.0, 2.0])
