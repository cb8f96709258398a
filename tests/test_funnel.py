"""The click -> conversion funnel: its invariants, ESMM's loss wiring, the entire-space evaluation, the study."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mtl_core.cli import main
from mtl_core.config import ConfigError
from mtl_core.data.funnel import funnel_summary, FunnelConfig
from mtl_core.data.synthetic import DataConfig
from mtl_core.models import build_model, ModelConfig
from mtl_core.studies import experiments
from mtl_core.train.training import COUNTERFACTUAL_WEIGHT, GLOBAL_WEIGHT, funnel_losses, TrainConfig, TrainingRun

SMALL = FunnelConfig(features=16, samples=4000, holdout=2000)


def test_no_conversion_without_a_click_and_the_truth_is_kept():
    data = SMALL.dataset()
    for split in (data.train, data.validation, data.test):
        click, converted = split.y[:, 0], split.y[:, 1]
        assert set(np.unique(split.y)) <= {0.0, 1.0} and not (converted > click).any()
        true_cvr, potential = split.truth[:, 0], split.truth[:, 1]
        assert split.truth.shape == (len(split.y), 2) and ((0 < true_cvr) & (true_cvr < 1)).all()
        assert (converted == click * potential).all()   # observed = potential, where clicked
    again = SMALL.dataset()
    assert (again.train.x == data.train.x).all() and (again.test.truth == data.test.truth).all()


def test_rates_are_as_asked():
    summary = funnel_summary(FunnelConfig(features=16, samples=200_000, holdout=100, click_rate=0.05, cvr_rate=0.1).dataset())
    assert summary["click_rate"] == pytest.approx(0.05, abs=0.003)
    assert summary["true_cvr_clicked"] == pytest.approx(0.1, abs=0.005)
    assert summary["cvr_clicked"] == pytest.approx(0.1, abs=0.01)


def test_the_hidden_intent_is_the_selection_bias():
    """Without it and with random clicks, clicked impressions convert like all; with it, clicked ones convert more."""
    unbiased = funnel_summary(replace(SMALL, samples=100_000, selection=0.0, bias=0.0).dataset())
    assert unbiased["true_cvr_clicked"] == pytest.approx(unbiased["true_cvr_all"], rel=0.05)
    biased = funnel_summary(replace(SMALL, samples=100_000, selection=0.0, bias=2.0).dataset())
    assert biased["true_cvr_clicked"] > 2 * biased["true_cvr_all"]


def test_bad_funnel_settings_say_what_is_allowed():
    with pytest.raises(ConfigError, match="click_rate"):
        FunnelConfig(click_rate=0.9)
    with pytest.raises(ConfigError, match="bias"):
        FunnelConfig(bias=-1)


def test_esmm_loss_is_bce_of_the_product_on_every_impression():
    logits = torch.randn(1, 64, 2, requires_grad=True)
    targets = torch.stack([torch.ones(64), (torch.arange(64) % 3 == 0).float()], -1)[None]
    targets[0, :32, 0] = 0
    targets[0, :32, 1] = 0                                    # no conversion without a click
    losses = funnel_losses(logits, targets, "esmm")
    p = torch.sigmoid(logits[..., 0]) * torch.sigmoid(logits[..., 1])
    torch.testing.assert_close(losses[0, 1], F.binary_cross_entropy(p[0], targets[0, :, 1]))
    torch.testing.assert_close(losses[0, 0], F.binary_cross_entropy_with_logits(logits[0, :, 0], targets[0, :, 0]))
    losses[0, 1].backward()
    assert (logits.grad[0, :32, 1] != 0).all()   # the CVR tower learns from unclicked impressions too (entire space)


def test_the_naive_cvr_loss_sees_clicked_impressions_only():
    logits = torch.randn(1, 64, 2, requires_grad=True)
    targets = torch.zeros(1, 64, 2)
    targets[0, 32:, 0] = 1
    targets[0, 40:, 1] = 1
    losses = funnel_losses(logits, targets, "clicked")
    torch.testing.assert_close(losses[0, 1], F.binary_cross_entropy_with_logits(logits[0, 32:, 1], targets[0, 32:, 1]))
    losses[0, 1].backward()
    assert (logits.grad[0, :32, 1] == 0).all() and (logits.grad[0, 32:, 1] != 0).all()


def constructed_funnel(outputs: int = 2):
    """Four impressions: clicked with pCTR 0.5 and 0.25 (the second converted), then two unclicked ones."""
    logits = torch.zeros(1, 4, outputs)
    logits[0, :, 0] = torch.logit(torch.tensor([0.5, 0.25, 0.1, 0.1]))
    logits[0, :, 1] = torch.tensor([0.3, -0.2, 0.5, 1.0])
    targets = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    return logits.requires_grad_(), targets


def counterfactual_part(logits, targets, head):
    """The conversion loss minus its ESMM part: what ESCM² adds."""
    return funnel_losses(logits, targets, head)[0, 1] - GLOBAL_WEIGHT * funnel_losses(logits, targets, "esmm")[0, 1]


def test_escm2_ips_weights_each_clicked_impression_by_one_over_its_ctr():
    logits, targets = constructed_funnel()
    counterfactual_part(logits, targets, "ips").backward()
    weight = torch.tensor([2.0, 4.0]) / 6.0                                      # 1 / pCTR, self-normalised
    expected = COUNTERFACTUAL_WEIGHT * weight * (torch.sigmoid(logits[0, :2, 1]) - targets[0, :2, 1])
    torch.testing.assert_close(logits.grad[0, :2, 1], expected.detach())
    assert (logits.grad[0, 2:, 1] == 0).all()          # unclicked impressions teach the CVR tower nothing here
    assert (logits.grad[0, :, 0] == 0).all()           # the propensity is held fixed: no gradient to the CTR tower


def test_escm2_dr_imputes_the_cvr_loss_of_every_impression():
    logits, targets = constructed_funnel(outputs=3)
    counterfactual_part(logits, targets, "dr").backward()
    assert (logits.grad[0, :, 2] != 0).all()            # the imputation tower learns on every impression
    assert (logits.grad[0, 2:, 1] == 0).all()           # the CVR tower's own error is known on clicks only
    assert (logits.grad[0, :2, 1] != 0).all() and (logits.grad[0, :, 0] == 0).all()
    # on unclicked rows only the mean of e_hat = softplus(logit) acts: 1/N each, and softplus' slope is the sigmoid
    torch.testing.assert_close(logits.grad[0, 2:, 2], COUNTERFACTUAL_WEIGHT * torch.sigmoid(logits[0, 2:, 2]).detach() / 4)


def test_escm2_dr_has_an_imputation_tower_the_others_do_not():
    for arch, outputs in (("escm2_ips", 2), ("escm2_dr", 3), ("escm2_dr_mmoe", 3), ("esmm", 2)):
        model = build_model(ModelConfig.for_arch(arch), SMALL.task_names, SMALL.task_groups, features=16)
        assert model(torch.randn(5, 16)).shape == (5, outputs), arch


def test_funnel_models_need_funnel_data_and_report_both_spaces():
    data = DataConfig(tasks=2, features=16, samples=300, holdout=100)
    model = build_model(ModelConfig.for_arch("esmm"), data.task_names, data.task_groups, features=16)
    with pytest.raises(ConfigError, match="funnel"):
        TrainingRun(model, data.dataset(), TrainConfig(steps=2))
    model = build_model(ModelConfig.for_arch("esmm"), SMALL.task_names, SMALL.task_groups, features=16)
    events = list(TrainingRun(model, SMALL.dataset(), TrainConfig(steps=30, eval_every=0)).events())
    metrics = events[-1].metrics
    conversion = set(metrics[metrics.task == "conversion"].metric)
    assert {"cvr_auc_all", "cvr_auc_clicked", "cvr_calibration_all", "cvr_calibration_clicked", "ctcvr_auc", "logloss"} <= conversion
    assert metrics.value.notna().all()


def test_funnel_experiment_rows_and_json(capsys):
    train = replace(experiments.FUNNEL_TRAIN, epochs=1)
    study = experiments.funnel(biases=(0.0, 2.0), seeds=2, data=SMALL, train=train)
    assert set(study.runs.columns) == {"model", "bias", "seed", "space", "metric", "value"}
    assert set(study.runs.model) == {"cvr_on_clicks", "esmm", "esmm_mmoe"} and set(study.runs.space) == {"all", "clicked"}
    assert len(study.summary) == 3 * 2 and "calibration gap (all - clicked)" in study.summary
    assert main(["experiment", "funnel", "--archs", "esmm", "--biases", "1", "--seeds", "1", "--samples", "500", "--epochs", "1",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and {"model", "bias", "seed", "space", "metric", "value"} == set(rows[0])


def test_train_esmm_on_the_funnel_from_the_cli(capsys):
    assert main(["train", "--arch", "esmm", "--data", "funnel", "--bias", "2", "--samples", "1000", "--holdout", "500",
                 "--features", "16", "--steps", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    conversion = next(t for t in report["tasks"] if t["name"] == "conversion")
    assert {"cvr_auc_all", "cvr_auc_clicked", "cvr_calibration_all"} <= set(conversion["test"])
