"""A click-to-conversion funnel (ESMM's setting: Ma et al., SIGIR 2018), synthetic, so that every impression's true
conversion propensity is known and the sample selection bias can be measured against it.

An impression is x ~ N(0, I_d) and an intent u ~ N(0, 1) that the models never see. Two unit weight
vectors, w_click and w_conv, have cosine `correlation` (as in the MMoE paper's generator). With
z_c = x·w_click and z_v = x·w_conv (each N(0, 1)):
    click propensity       pCTR = σ(a_c + selection · z_c + bias · u)
    conversion propensity  pCVR = σ(a_v + CONVERSION_SCALE · z_v + bias · u)   (the chance of converting if clicked)
The intercepts are solved on the training rows so that the mean pCTR is `click_rate` and the mean pCVR
over clicked impressions (weighted by pCTR) is `cvr_rate`. Labels: click ~ Bernoulli(pCTR); a conversion
~ Bernoulli(pCVR) is drawn for every impression (its *potential* conversion) but observed only when it was
clicked, so the label pair is y = (click, click · conversion) and no conversion happens without a click.

`selection` is how strongly clicks follow the features: at 0 (and bias 0) clicks are random; the larger it
is, the further the clicked impressions sit along w_click, and with `correlation` away from 0 the further
they also sit in conversion propensity. That alone is a covariate shift: the conversion of a clicked
impression depends on its features as it would for any impression, so a CVR model trained on clicked
impressions is not biased by it, only short of data far from the clicks (measured: docs/EXPERIMENTS.md
section 9). `bias` is the sample selection bias proper: an intent that raises both the click and the
conversion, which no model sees. Clicked impressions then convert more than their features say, and a
model that learns conversions from clicked impressions overestimates the CVR of the others. (A design
choice: the ESMM paper names the bias but not its mechanism; this one makes it a knob and keeps the truth.)
Each split keeps `truth [n, 2]`: every impression's true pCVR and its potential conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ..config import check
from ..train.metrics import PROBABILITY_CLIP, auc
from .synthetic import Dataset, pearson, Split

CONVERSION_SCALE = 2.0
# funnel_metrics' names -> (metric, space) in the study's rows and the live chart
QUALITY = {"cvr_auc_all": ("cvr_auc", "all"), "cvr_auc_clicked": ("cvr_auc", "clicked"),
           "cvr_calibration_all": ("cvr_calibration", "all"), "cvr_calibration_clicked": ("cvr_calibration", "clicked"),
           "ctcvr_auc": ("ctcvr_auc", "all")}   # how strongly the features decide a conversion (the logit's slope along w_conv)
TASKS = ("click", "conversion")


@dataclass(frozen=True)
class FunnelConfig:
    """Impressions with a click and, only after a click, a conversion; see the module docstring."""

    correlation: float = 0.5
    selection: float = 2.0
    bias: float = 1.0
    click_rate: float = 0.05
    cvr_rate: float = 0.1
    features: int = 100
    samples: int = 50_000
    holdout: int = 20_000
    seed: int = 0

    tasks = 2
    task_names = TASKS
    is_binary = (True, True)
    task_groups = (0, 0)
    task_types = ("binary", "binary")
    funnel = True

    def __post_init__(self) -> None:
        check(-1 <= self.correlation <= 1, f"correlation is a cosine between -1 and 1, got {self.correlation}.")
        check(0 <= self.selection <= 10, f"selection is a strength between 0 (random clicks) and 10, got {self.selection}.")
        check(0 <= self.bias <= 5, f"bias is a strength between 0 (no hidden intent) and 5, got {self.bias}.")
        check(0.001 <= self.click_rate <= 0.5, f"click_rate must be between 0.001 and 0.5, got {self.click_rate}.")
        check(0.001 <= self.cvr_rate <= 0.5, f"cvr_rate must be between 0.001 and 0.5, got {self.cvr_rate}.")
        check(2 <= self.features <= 1000, f"features must be between 2 and 1000, got {self.features}.")
        check(100 <= self.samples <= 1_000_000, f"samples must be between 100 and 1,000,000, got {self.samples}.")
        check(100 <= self.holdout <= 1_000_000, f"holdout must be between 100 and 1,000,000, got {self.holdout}.")

    def dataset(self) -> Dataset:
        return make_funnel(self)


def _intercept(target: float, mean_at) -> float:
    """The intercept a with mean_at(a) = target (mean_at increases with a), by bisection."""
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_at(middle) < target else (low, middle)
    return (low + high) / 2


def make_funnel(config: FunnelConfig) -> Dataset:
    """Train / validation / test impressions for `config`; the same config gives identical arrays."""
    rng = np.random.default_rng(config.seed)
    basis, _ = np.linalg.qr(rng.standard_normal((config.features, 2)))
    p = config.correlation
    weights = basis @ np.array([[1.0, 0.0], [p, np.sqrt(1 - p * p)]]).T   # [features, 2], unit columns, cosine p
    n, train = config.samples + 2 * config.holdout, config.samples
    x = rng.standard_normal((n, config.features))
    intent = rng.standard_normal(n)
    z = x @ weights
    click_logit = config.selection * z[:, 0] + config.bias * intent
    a_c = _intercept(config.click_rate, lambda a: expit(a + click_logit[:train]).mean())
    ctr = expit(a_c + click_logit)
    conversion_logit = CONVERSION_SCALE * z[:, 1] + config.bias * intent
    a_v = _intercept(config.cvr_rate, lambda a: np.average(expit(a + conversion_logit[:train]), weights=ctr[:train]))
    cvr = expit(a_v + conversion_logit)
    click = rng.random(n) < ctr
    potential = rng.random(n) < cvr
    y = np.stack([click, click & potential], 1).astype(np.float32)
    truth = np.stack([cvr, potential], 1).astype(np.float32)

    def split(rows: slice) -> Split:
        return Split(x[rows].astype(np.float32), y[rows], np.zeros(len(y[rows]), dtype=np.int64), truth[rows])

    return Dataset(config=config, train=split(slice(0, train)), validation=split(slice(train, train + config.holdout)),
                   test=split(slice(train + config.holdout, n)), weights=weights,
                   target_cosine=np.array([[1.0, p], [p, 1.0]]), realised_cosine=None,
                   label_correlation=pearson(y[:train]), positive_rate=y[:train].mean(0))


def funnel_summary(dataset: Dataset) -> dict[str, float]:
    """The funnel's measured rates on the training split: impressions, clicks, conversions, the click
    rate, the conversion rate of clicked impressions, and the true mean pCVR over clicked and over all
    impressions (their gap is the selection bias a model trained on clicks inherits)."""
    y, truth = dataset.train.y, dataset.train.truth
    clicked = y[:, 0] == 1
    return dict(impressions=len(y), clicks=int(clicked.sum()), conversions=int(y[:, 1].sum()), click_rate=float(clicked.mean()),
                cvr_clicked=float(y[clicked, 1].mean()) if clicked.any() else float("nan"),
                true_cvr_clicked=float(truth[clicked, 0].mean()) if clicked.any() else float("nan"),
                true_cvr_all=float(truth[:, 0].mean()))


def funnel_metrics(split: Split, logits: np.ndarray, head: str | None) -> list[dict[str, float]]:
    """Metrics of a model's outputs `logits [n, 2]` on a funnel split, per task (click, conversion).

    Each model's pCTR is σ(logit 0). Its pCVR is σ(logit 1) for the funnel heads (`head` "esmm": pCTCVR =
    pCTR · pCVR; "clicked": pCVR trained on clicked impressions only); a model without a funnel head models
    click·conversion directly, and its pCVR is σ(logit 1) / pCTR (clipped to 1).
    click:       auc, logloss (all impressions)
    conversion:  logloss and ctcvr_auc of pCTCVR against click·conversion (all impressions); cvr_auc_all
                 against every impression's potential conversion and cvr_auc_clicked against the observed
                 conversions of clicked impressions; cvr_calibration_all / _clicked = mean pCVR / mean true
                 pCVR over that space (1 = calibrated, above 1 = overestimates)."""
    ctr = expit(logits[:, 0].astype(np.float64))
    if head is None:
        ctcvr = expit(logits[:, 1].astype(np.float64))
        cvr = np.minimum(ctcvr / np.maximum(ctr, PROBABILITY_CLIP), 1.0)
    else:
        cvr = expit(logits[:, 1].astype(np.float64))
        ctcvr = ctr * cvr
    click, converted = split.y[:, 0], split.y[:, 1]
    true_cvr, potential = split.truth[:, 0], split.truth[:, 1]
    clicked = click == 1
    loss = lambda y, p: float(-np.mean(y * np.log(np.clip(p, PROBABILITY_CLIP, 1)) + (1 - y) * np.log(np.clip(1 - p, PROBABILITY_CLIP, 1))))
    return [dict(auc=auc(click, ctr), logloss=loss(click, ctr)),
            dict(logloss=loss(converted, ctcvr), ctcvr_auc=auc(converted, ctcvr), cvr_auc_all=auc(potential, cvr),
                 cvr_auc_clicked=auc(converted[clicked], cvr[clicked]),
                 cvr_calibration_all=float(cvr.mean() / true_cvr.mean()),
                 cvr_calibration_clicked=float(cvr[clicked].mean() / true_cvr[clicked].mean()) if clicked.any() else float("nan"))]


def quality_rows(metrics) -> list[dict]:
    """The CVR quality rows (space, metric, value) of one evaluation's test metrics on a funnel."""
    test = metrics[(metrics.split == "test") & metrics.metric.isin(QUALITY)]
    return [dict(space=QUALITY[r.metric][1], metric=QUALITY[r.metric][0], value=float(r.value)) for r in test.itertuples()]
