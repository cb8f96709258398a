"""The synthetic generator: determinism, exact weight cosines, label correlation, binary tasks, validation."""

import numpy as np
import pytest

from mtl_core.config import ConfigError, from_dict, to_dict
from mtl_core.data.synthetic import DataConfig, label_correlation_curve, make_dataset, pearson

SMALL = dict(features=20, samples=2000, holdout=100)


def arrays(dataset):
    return [a for s in (dataset.train, dataset.validation, dataset.test) for a in (s.x, s.y, s.users)] + [dataset.weights]


def test_same_seed_same_data_and_different_seed_different_data():
    config = DataConfig(tasks=3, task_types=("regression", "binary", "binary"), **SMALL)
    a, b = make_dataset(config), make_dataset(config)
    assert all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b)))
    c = make_dataset(DataConfig(tasks=3, task_types=("regression", "binary", "binary"), seed=1, **SMALL))
    assert not np.array_equal(a.train.x, c.train.x) and not np.array_equal(a.train.y, c.train.y)
    assert not np.array_equal(a.weights, c.weights)


def test_splits_have_documented_shapes_and_types():
    d = make_dataset(DataConfig(tasks=3, **SMALL))
    assert d.train.x.shape == (2000, 20) and d.validation.y.shape == (100, 3) and d.test.users.shape == (100,)
    assert d.train.x.dtype == np.float32 and d.train.y.dtype == np.float32 and d.train.users.dtype == np.int64
    assert d.split("validation") is d.validation
    with pytest.raises(ConfigError, match="train, validation, test"):
        d.split("dev")


@pytest.mark.parametrize("config", [
    DataConfig(tasks=3, correlation=0.7, **SMALL),
    DataConfig(tasks=4, groups=(0, 0, 1, 1), correlation=0.9, between_correlation=0.1, **SMALL),
    DataConfig(tasks=3, cosine=((1, 0.5, -0.2), (0.5, 1, 0.3), (-0.2, 0.3, 1)), **SMALL),
    DataConfig(tasks=2, correlation=1.0, **SMALL),  # singular: eigendecomposition path
    DataConfig(tasks=3, correlation=1.0, **SMALL),
    DataConfig(tasks=2, correlation=-0.5, **SMALL),
])
def test_realised_cosine_equals_target(config):
    d = make_dataset(config)
    np.testing.assert_allclose(d.realised_cosine, config.target_cosine, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d.weights, axis=0), config.scale, atol=1e-6)


def test_groups_build_the_block_target():
    c = DataConfig(tasks=4, groups=(0, 1, 0, 1), correlation=0.8, between_correlation=-0.1).target_cosine
    assert c[0, 2] == c[1, 3] == 0.8 and c[0, 1] == c[2, 3] == -0.1 and (np.diag(c) == 1).all()


def test_two_tasks_follow_the_paper_formula():
    p, scale = 0.3, 2.5
    config = DataConfig(tasks=2, correlation=p, scale=scale, **SMALL)
    d = make_dataset(config)
    u, _ = np.linalg.qr(np.random.default_rng(config.seed).standard_normal((config.features, 2)))
    np.testing.assert_allclose(d.weights[:, 0], scale * u[:, 0], atol=1e-12)
    np.testing.assert_allclose(d.weights[:, 1], scale * (p * u[:, 0] + np.sqrt(1 - p**2) * u[:, 1]), atol=1e-12)
    assert d.realised_cosine[0, 1] == pytest.approx(p)


def test_label_correlation_rises_with_cosine():
    curve = label_correlation_curve([0.0, 0.5, 0.9, 1.0], trials=8, samples=5000, base=DataConfig())
    assert list(curve.columns) == ["cosine", "trial", "label_correlation"] and len(curve) == 32
    mean = curve.groupby("cosine").label_correlation.mean()
    assert mean[0.0] < mean[0.5] < mean[0.9] < mean[1.0]
    assert mean[1.0] > 0.98  # identical tasks up to noise std 0.1 (one draw can dip lower where the sinusoids flatten y)


def test_dataset_reports_measured_label_correlation():
    d = make_dataset(DataConfig(tasks=2, correlation=1.0, **SMALL))
    assert d.label_correlation[0, 1] > 0.98 and (np.diag(d.label_correlation) == 1).all()
    y = d.train.y.astype(np.float64)
    assert d.label_correlation[0, 1] == pytest.approx(np.corrcoef(y.T)[0, 1], abs=1e-6)


def test_constant_label_column_gives_zero_correlation_not_nan():
    y = np.column_stack([np.arange(5.0), np.zeros(5), np.arange(5.0) ** 2])
    r = pearson(y)
    assert r[0, 1] == r[1, 2] == 0 and r[1, 1] == 1 and r[0, 2] == pytest.approx(np.corrcoef(y[:, 0], y[:, 2])[0, 1])


@pytest.mark.parametrize("rate", [0.02, 0.5])
def test_binary_tasks_hit_the_positive_rate(rate):
    d = make_dataset(DataConfig(tasks=2, task_types=("binary", "regression"), positive_rates=(rate, 0.9), **SMALL))
    assert set(np.unique(d.train.y[:, 0])) <= {0.0, 1.0} and set(np.unique(d.test.y[:, 0])) <= {0.0, 1.0}
    assert abs(d.positive_rate[0] - rate) <= 0.01
    assert np.isnan(d.positive_rate[1])


def test_regression_labels_are_standardised_on_train():
    y = make_dataset(DataConfig(tasks=3, **SMALL)).train.y
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-5)


def test_helpers():
    c = DataConfig(tasks=3, groups=(0, 1, 1), task_types=("binary", "regression", "binary"))
    assert c.task_groups == (0, 1, 1) and DataConfig(tasks=3).task_groups == (0, 0, 0)
    assert c.is_binary == (True, False, True) and DataConfig().is_binary == (False, False)
    assert c.task_names == ("task 0", "task 1", "task 2")


def test_round_trip_through_dict():
    config = DataConfig(tasks=3, groups=(0, 0, 1), cosine=((1, 0.5, 0.1), (0.5, 1, 0.2), (0.1, 0.2, 1)),
                        task_types=("binary", "regression", "binary"), positive_rates=(0.1, 0.5, 0.3))
    back = from_dict(DataConfig, to_dict(config))
    assert back == config and isinstance(back.cosine[0], tuple) and isinstance(back.groups, tuple)


@pytest.mark.parametrize("settings, message", [
    (dict(tasks=0), "tasks must be a whole number from 1 to 8"),
    (dict(tasks=9), "tasks must be a whole number from 1 to 8"),
    (dict(correlation=1.2), r"correlation .* \[-1, 1\]"),
    (dict(tasks=4, features=3), r"features \(3\) must be at least the number of tasks \(4\)"),
    (dict(samples=5), "samples must be at least 10"),
    (dict(scale=0), "scale must be positive"),
    (dict(task_types=("regression", "classification")), "Unknown task type.*'regression' or 'binary'"),
    (dict(task_types=("binary", "binary"), positive_rates=(0.0, 0.5)), "strictly between 0 and 1"),
    (dict(task_types=("binary", "binary"), positive_rates=(0.5, 1.0)), "strictly between 0 and 1"),
    (dict(task_types=("binary",)), r"task_types needs one entry per task \(2\)"),
    (dict(tasks=3, groups=(0, 1)), r"groups needs one entry per task \(3\)"),
    (dict(tasks=3, groups=(0, 2, 2)), "numbered 0, 1, ..., G-1 with every group used"),
    (dict(cosine=((1, 0.5),)), r"cosine needs one entry per task \(2\)"),
    (dict(cosine=((1, 0.5), (0.4, 1))), "cosine must be symmetric"),
    (dict(cosine=((1, 0.5), (0.5, 0.9))), "1 on the diagonal"),
    (dict(tasks=3, cosine=((1, 0.9, -0.9), (0.9, 1, 0.9), (-0.9, 0.9, 1))), "not positive semi-definite"),
    (dict(tasks=3, correlation=-0.9), "not positive semi-definite.*at least -0.5"),
    (dict(tasks=4, groups=(0, 0, 1, 1), correlation=0.0, between_correlation=0.9),
     "within-group correlation 0.0 and between-group 0.9 .*not positive semi-definite"),
])
def test_invalid_settings_explain_themselves(settings, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**settings)


def test_positive_rate_of_a_regression_task_is_ignored():
    assert DataConfig(task_types=("regression", "binary"), positive_rates=(0.0, 0.2)).is_binary == (False, True)
