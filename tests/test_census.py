"""The census-income loader: the paper's split, no label in the inputs, a deterministic encoding, and a
clear message when the data file is missing or damaged."""

import numpy as np
import pytest

from mtl_core.config import ConfigError
from mtl_core.data import census
from mtl_core.data.census import CensusConfig


@pytest.fixture(scope="module")
def group1():
    return CensusConfig(group=1).dataset()


def test_split_sizes_are_the_papers(group1):
    assert len(group1.train.x) == 199_523                                  # every training row trains
    assert len(group1.validation.x) == len(group1.test.x) == 49_881        # the test rows split 1:1
    assert group1.train.x.shape[1] == group1.config.features
    assert group1.config.task_names == ("income > 50K", "never married")


def test_validation_and_test_are_disjoint_halves_of_the_test_rows():
    part = census.read()["part"].to_numpy(str)
    train, validation, test = census.split_rows(part, 199_523, 49_881)
    assert (part[train] == "train").all() and len(train) == (part == "train").sum()
    assert not set(validation) & set(test)
    assert sorted([*validation, *test]) == np.flatnonzero(part == "test").tolist()


@pytest.mark.parametrize("group, removed, kept", [(1, ("income", "marital_status"), "education"),
                                                  (2, ("education", "marital_status"), "income")])
def test_the_labels_of_a_group_are_not_inputs(group, removed, kept):
    *_, names = census._encoded(group)
    columns = {name.split("=")[0] for name in names}
    assert not columns & set(removed)
    assert kept in columns and "instance_weight" not in columns


def test_labels_follow_the_papers_definitions(group1):
    frame = census.read()
    train = frame[frame.part == "train"]
    assert np.isclose(group1.positive_rate[0], (train.income == "50000+.").mean())
    assert np.isclose(group1.positive_rate[1], (train.marital_status == "Never married").mean())
    assert abs(group1.label_correlation[0, 1]) == pytest.approx(0.178, abs=0.002)   # the MMoE paper's 0.1768 (Ma et al., KDD 2018, section 6)
    college = census.labels(train, 2)[:, 0]
    assert college.mean() == pytest.approx(train.education.isin(census.COLLEGE).mean())


def test_encoding_is_deterministic_and_scaled_with_training_statistics(group1):
    again = census._encoded(1)
    x, *_ = again
    assert np.array_equal(x[again[2] == "train"], group1.train.x)
    numeric = group1.train.x[:, :len(census.NUMERIC)]
    np.testing.assert_allclose(numeric.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(numeric.std(0), 1, atol=1e-3)
    onehot = group1.train.x[:, len(census.NUMERIC):]
    assert set(np.unique(onehot)) == {0.0, 1.0}


def test_fewer_samples_take_the_same_rows_every_time():
    a = census._load(1, 1000, 100)
    census._load.cache_clear()   # a fresh load, not the cached object
    b = CensusConfig(group=1, samples=1000, holdout=100, seed=5).dataset()
    assert a.train is not b.train and b.config.seed == 5
    assert np.array_equal(a.train.x, b.train.x) and len(a.train.x) == 1000 and len(b.test.x) == 100


def test_a_missing_or_damaged_file_says_how_to_rebuild_it(tmp_path, monkeypatch):
    monkeypatch.setattr(census, "FILE", tmp_path / "census_income.parquet")
    with pytest.raises(ConfigError, match="python -m mtl_core.data.census build"):
        census.read()
    (tmp_path / "census_income.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match="cannot be read.*python -m mtl_core.data.census build"):
        census.read()


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="groups 1 and 2"):
        CensusConfig(group=3)
    with pytest.raises(ConfigError, match="199,523"):
        CensusConfig(samples=300_000)
