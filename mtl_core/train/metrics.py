"""Per-task evaluation: MSE and R^2 for regression, AUC, GAUC and log loss for binary tasks, and MTL gain.

GAUC (DIN, Zhou et al. KDD 2018, eq. 10) is the mean of per-user AUCs weighted by each user's number
of samples (impressions): it asks how well items are ordered *within* each user, ignoring offsets
that only move a whole user up or down. MTL gain (PLE, Tang et al. RecSys 2020, eq. 11) is the
improvement of a multi-task model over single-task models, positive = MTL is better.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import expit
from sklearn.metrics import log_loss, mean_squared_error, r2_score, roc_auc_score

HIGHER_IS_BETTER = {"mse": False, "r2": True, "auc": True, "gauc": True, "logloss": False}
PROBABILITY_CLIP = 1e-7  # log loss of a probability clipped to [1e-7, 1 - 1e-7]: at most ~16 per sample


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE and R^2 of predictions `[n]` against labels `[n]`."""
    return {"mse": float(mean_squared_error(y_true, y_pred)), "r2": float(r2_score(y_true, y_pred))}


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of scores `[n]` for 0/1 labels `[n]`; NaN when only one class is present."""
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, score))


def gauc(y_true: np.ndarray, score: np.ndarray, users: np.ndarray) -> float:
    """Group AUC: per-user AUC `[users]` averaged with weight = the user's sample count.

    Users whose labels are all one class have no AUC and are skipped (from both sums); NaN if none is left.
    Vectorised: one sort by (user, score), then each user's AUC from the ranks of its positives
    (Mann-Whitney, ties get their average rank), so 100k samples take milliseconds.
    """
    order = np.lexsort((score, users))  # by user, then by score
    u, s, y = np.asarray(users)[order], np.asarray(score)[order], np.asarray(y_true, dtype=np.float64)[order]
    n = len(u)
    user_start = np.r_[True, u[1:] != u[:-1]]
    tie_start = user_start | np.r_[True, s[1:] != s[:-1]]
    user_id, tie_id = np.cumsum(user_start) - 1, np.cumsum(tie_start) - 1
    first = np.flatnonzero(tie_start)
    last = np.r_[first[1:], n] - 1
    rank = (first + last)[tie_id] / 2 - np.flatnonzero(user_start)[user_id] + 1  # 1-based within the user
    count = np.bincount(user_id).astype(np.float64)
    positives = np.bincount(user_id, weights=y)
    negatives = count - positives
    ok = (positives > 0) & (negatives > 0)
    if not ok.any():
        return float("nan")
    rank_sum = np.bincount(user_id, weights=rank * y)[ok]
    per_user = (rank_sum - positives[ok] * (positives[ok] + 1) / 2) / (positives[ok] * negatives[ok])
    return float(np.sum(count[ok] * per_user) / np.sum(count[ok]))


def task_metrics(y_true: np.ndarray, pred: np.ndarray, users: np.ndarray, is_binary: Sequence[bool]) -> list[dict[str, float]]:
    """Metrics per task from labels `[n, tasks]`, model outputs `[n, tasks]` and user ids `[n]`.

    Regression tasks: {"mse", "r2"} of the prediction. Binary tasks: the output is a logit;
    {"auc", "gauc"} rank it, {"logloss"} scores sigmoid(logit) clipped away from 0 and 1.
    """
    y_true, pred = np.asarray(y_true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    results = []
    for k, binary in enumerate(is_binary):
        if not binary:
            results.append(regression_metrics(y_true[:, k], pred[:, k]))
            continue
        probability = np.clip(expit(pred[:, k]), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
        results.append({"auc": auc(y_true[:, k], pred[:, k]), "gauc": gauc(y_true[:, k], pred[:, k], users),
                        "logloss": float(log_loss(y_true[:, k], probability, labels=[0, 1]))})
    return results


def mtl_gain(mtl: float, single: float, higher_is_better: bool) -> float:
    """PLE eq. 11: how much the MTL model beats the single-task one; positive = MTL is better."""
    return mtl - single if higher_is_better else single - mtl
