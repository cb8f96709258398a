"""The statistics behind every ship decision: per-seed margins, Wilcoxon's test, seeds needed."""

import math

import pandas as pd
import pytest

from mtl_core.studies.claims import Claim
from mtl_core.studies.evidence import ALPHA, Effect, seeds_needed
from mtl_core.studies.experiments import rise_by_seed, seed_by_seed
from mtl_core.studies.lessons import rises_on_most_seeds, wins_most_not_all


def test_margins_all_one_way_are_beyond_chance_and_symmetric_ones_are_not():
    assert Effect.of([0.1, 0.3, 0.2, 0.5, 0.4, 0.6, 0.7]).p == pytest.approx(2 ** -7)
    assert not Effect.of([0.1, -0.2, 0.3, -0.4, 0.5, -0.6]).beyond_chance
    assert not Effect.of([1.0, 2.0, 3.0, 4.0]).beyond_chance          # four seeds can never reach 5%: 2**-4 > ALPHA
    assert Effect.of([0.0, 0.0]).p == 1.0                              # no margin at all is no evidence


def test_a_diverged_run_counts_as_the_largest_margin_and_nan_is_left_out():
    effect = Effect.of([math.inf, 0.2, 0.1, 0.3, 0.4, math.nan, -0.05])
    assert len(effect.values) == 6 and effect.beyond_chance
    assert effect.quantile(1.0) == math.inf and "6 seeds" in str(effect)


def test_seeds_needed_follows_the_normal_rule_of_thumb():
    assert seeds_needed(0.01, 0.01) == pytest.approx((1.6449 + 0.8416) ** 2, rel=1e-3)   # about 6.2
    assert seeds_needed(0.005, 0.01) == pytest.approx(4 * seeds_needed(0.01, 0.01))      # half the gain, four times the seeds
    assert seeds_needed(0.0, 0.01) == math.inf


def runs(gains: list[float]) -> pd.DataFrame:
    """A sweep's final losses where `b` loses to `a` by `gains[seed]`."""
    rows = [dict(arch="a", correlation=0.2, seed=s, loss=1.0) for s in range(len(gains))]
    return pd.DataFrame(rows + [dict(arch="b", correlation=0.2, seed=s, loss=1.0 + g) for s, g in enumerate(gains)])


def test_seed_by_seed_puts_the_better_model_first():
    table = seed_by_seed(runs([0.1, 0.2, -0.05, 0.3, 0.1]))
    row = table.iloc[0]
    assert (row.better, row.worse, row.won, row.seeds) == ("a", "b", 4, 5)
    assert row.mean_gain == pytest.approx(0.13) and row.p > ALPHA     # 4 of 5 seeds: not beyond chance


def test_most_not_all_fails_on_all_seeds_and_on_half():
    check = wins_most_not_all("a", "b")
    assert check(runs([0.05, 0.1, -0.3, 0.02, 0.4, 0.01])).held
    assert not check(runs([0.1] * 6)).held                           # won on all: not what the lesson predicts
    assert not check(runs([0.1, -0.1, 0.2, -0.2])).held              # half
    assert check(runs([0.1] * 6)).effect < 0 < check(runs([0.05, 0.1, -0.3, 0.02, 0.4, 0.01])).effect


def test_a_claim_that_says_no_effect_fails_when_the_effect_is_beyond_chance():
    def made(values, finds):
        return Claim("x", "w", "c", evidence=dict, holds=lambda n: True, effect=lambda: Effect.of(values), finds=finds)
    strong = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert made(strong, True).verdict().held and not made(strong, False).verdict().held
    assert made([0.1, -0.1, 0.2], False).verdict().held and not made([0.1, -0.1, 0.2], True).verdict().held


def test_the_rise_with_unrelated_tasks_is_counted_on_the_same_seed():
    rows = [dict(arch=arch, correlation=p, seed=seed, loss=1.0 + (rise if p == 0.0 else 0.0))
            for arch, rises in (("a", [0.5, 0.2, -0.1]), ("b", [-0.3, -0.2, 0.1])) for seed, rise in enumerate(rises)
            for p in (0.0, 1.0)]
    table = rise_by_seed(pd.DataFrame(rows)).set_index("arch")
    assert table.rose.to_dict() == {"a": 2, "b": 1} and table.median_rise["a"] == pytest.approx(0.2)
    verdict = rises_on_most_seeds()(pd.DataFrame(rows))
    assert not verdict.held and verdict.effect < 0          # b rose on 1 of 3 seeds: not every model
