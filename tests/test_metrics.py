"""Metrics: AUC and GAUC on hand-computed cases, per-task metrics, MTL gain."""

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mtl_core.train.metrics import HIGHER_IS_BETTER, auc, gauc, mtl_gain, regression_metrics, task_metrics


def test_auc_hand_computed():
    # positive scores 0.8, 0.4; negative 0.6, 0.2: 3 of 4 pairs ordered correctly
    assert auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.6, 0.4, 0.2])) == pytest.approx(0.75)
    assert auc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)  # a tie counts half


def test_auc_of_one_class_is_nan():
    assert math.isnan(auc(np.ones(4), np.arange(4.0)))


def test_gauc_hand_computed_and_skips_single_class_users():
    y = np.array([1, 0, 0, 1, 0, 1, 1])
    score = np.array([0.9, 0.1, 0.8, 0.3, 0.5, 0.0, 0.2])
    users = np.array([0, 0, 1, 1, 1, 2, 2])
    # user 0: AUC 1 (2 samples); user 1: positive 0.3 below both negatives, AUC 0 (3 samples); user 2 all positive
    assert gauc(y, score, users) == pytest.approx((2 * 1.0 + 3 * 0.0) / 5)
    assert math.isnan(gauc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.3]), np.array([0, 0, 1])))


def test_gauc_with_one_user_is_auc():
    rng = np.random.default_rng(0)
    y, score = rng.integers(0, 2, 500), np.round(rng.standard_normal(500), 1)  # rounding makes ties
    assert gauc(y, score, np.zeros(500, dtype=int)) == pytest.approx(roc_auc_score(y, score))


def test_gauc_ignores_per_user_offsets_that_auc_sees():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 50, 5000)
    signal = rng.standard_normal(5000)
    y = (signal + 2 * rng.standard_normal(50)[users] > 0.5).astype(int)  # users differ in base rate
    score = signal + 5 * rng.standard_normal(50)[users]  # a model whose user shift is wrong
    assert gauc(y, score, users) > auc(y, score) + 0.05
    expected = [(m.sum(), roc_auc_score(y[m], score[m])) for m in (users == u for u in range(50)) if 0 < y[m].mean() < 1]
    assert gauc(y, score, users) == pytest.approx(sum(n * a for n, a in expected) / sum(n for n, _ in expected))


def test_gauc_is_fast():
    rng = np.random.default_rng(2)
    y, score, users = rng.integers(0, 2, 100_000), rng.standard_normal(100_000), rng.integers(0, 1000, 100_000)
    start = time.perf_counter()
    gauc(y, score, users)
    assert time.perf_counter() - start < 0.5


def test_task_metrics_per_task_type():
    y = np.array([[0.0, 1], [1.0, 0], [2.0, 1], [3.0, 0]])
    pred = np.array([[0.0, 2.0], [1.0, -2.0], [2.0, 50.0], [3.0, -50.0]])  # regression perfect, logits perfect
    reg, binary = task_metrics(y, pred, np.array([0, 0, 1, 1]), [False, True])
    assert reg == {"mse": 0.0, "r2": 1.0}
    assert set(binary) == {"auc", "gauc", "logloss"} and binary["auc"] == binary["gauc"] == 1.0
    expected = -np.mean(np.log([1 / (1 + np.exp(-2)), 1 / (1 + np.exp(-2)), 1 - 1e-7, 1 - 1e-7]))
    assert binary["logloss"] == pytest.approx(expected)  # +-50 logits clipped, not infinite


def test_regression_metrics_of_the_mean():
    y = np.array([1.0, -1.0, 1.0, -1.0])
    assert regression_metrics(y, np.zeros(4)) == {"mse": 1.0, "r2": 0.0}


def test_mtl_gain_is_positive_when_mtl_is_better():
    assert mtl_gain(0.8, 1.0, HIGHER_IS_BETTER["mse"]) == pytest.approx(0.2)
    assert mtl_gain(1.2, 1.0, HIGHER_IS_BETTER["mse"]) == pytest.approx(-0.2)
    assert mtl_gain(0.75, 0.70, HIGHER_IS_BETTER["auc"]) == pytest.approx(0.05)
    assert mtl_gain(0.65, 0.70, HIGHER_IS_BETTER["auc"]) == pytest.approx(-0.05)
