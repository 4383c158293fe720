"""Evaluation metrics for the churn classifiers and the recommender.

Binary metrics take NumPy arrays of labels (0/1) and predicted probabilities,
which fit on the driver at the project's scale (one value per test user).
Ranking metrics run in Spark on DataFrames of recommendations and held-out
pairs, with binary relevance, and follow the definitions of Spark's
``RankingMetrics`` so that ``RankingEvaluator`` can check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as sf

# Probabilities are clipped to [EPSILON, 1 - EPSILON] in the log loss.
LOG_LOSS_EPSILON = 1e-15


def _as_arrays(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(scores, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} and {p.size}")
    if y.size == 0:
        raise ValueError("labels and scores are empty")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, p


def _has_both_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < y.size


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the area under the ROC curve, NaN when only one class is present.

    The area equals the probability that a random positive scores above a
    random negative, ties counting one half (the Mann-Whitney statistic).
    """
    y, p = _as_arrays(labels, scores)
    if not _has_both_classes(y):
        return math.nan
    order = np.argsort(p, kind="mergesort")
    sorted_scores = p[order]
    ranks = np.empty(p.size)
    # Average 1-based ranks over runs of tied scores.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2.0
    positives = y.sum()
    negatives = y.size - positives
    rank_sum = ranks[y == 1.0].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def _threshold_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return distinct thresholds (descending) and the TP and FP counts at ``score >= t``."""
    order = np.argsort(-p, kind="mergesort")
    sorted_scores = p[order]
    sorted_labels = y[order]
    # Last index of each run of equal scores in descending order.
    run_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_labels)[run_ends]
    false_positives = (run_ends + 1) - true_positives
    return sorted_scores[run_ends], true_positives, false_positives


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the false and true positive rates of the ROC curve, from (0, 0) to (1, 1)."""
    y, p = _as_arrays(labels, scores)
    _, true_positives, false_positives = _threshold_counts(y, p)
    positives = max(y.sum(), 1.0)
    negatives = max(y.size - y.sum(), 1.0)
    false_rate = np.r_[0.0, false_positives / negatives]
    true_rate = np.r_[0.0, true_positives / positives]
    return false_rate, true_rate


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the area under the precision-recall curve as average precision.

    Average precision sums precision at each distinct threshold weighted by
    the recall gained there (a step-wise area, as scikit-learn computes it).
    NaN when there is no positive.
    """
    y, p = _as_arrays(labels, scores)
    if y.sum() == 0:
        return math.nan
    _, true_positives, false_positives = _threshold_counts(y, p)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / y.sum()
    recall_gain = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_gain * precision))


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the mean negative log-likelihood of the labels (natural log).

    Probabilities are clipped to ``[1e-15, 1 - 1e-15]`` first, so a confident
    wrong prediction costs about 34.5 rather than infinity.
    """
    y, p = _as_arrays(labels, scores)
    clipped = np.clip(p, LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON)
    return float(-np.mean(y * np.log(clipped) + (1.0 - y) * np.log(1.0 - clipped)))


def brier_score(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the mean squared difference between probability and label."""
    y, p = _as_arrays(labels, scores)
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of a thresholded classifier, where positive means churned.

    Attributes
    ----------
    threshold : float
        A user is predicted churned when the probability is at least this.
    true_positives, false_positives, true_negatives, false_negatives : int
        The four cells.
    """

    threshold: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Share of predicted churners who churned; NaN when none is predicted."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else math.nan

    @property
    def recall(self) -> float:
        """Share of churners predicted as such; NaN when nobody churned."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else math.nan

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0 when there is no true positive."""
        denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / denominator if denominator else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """Return the cells and the derived rates as a JSON-ready dictionary."""
        return {
            "threshold": self.threshold,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "true_negatives": self.true_negatives,
            "false_negatives": self.false_negatives,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def confusion_matrix(labels: np.ndarray, scores: np.ndarray, threshold: float) -> ConfusionMatrix:
    """Count the cells of the confusion matrix when ``score >= threshold`` predicts churn."""
    y, p = _as_arrays(labels, scores)
    predicted = p >= threshold
    actual = y == 1.0
    return ConfusionMatrix(
        threshold=float(threshold),
        true_positives=int(np.sum(predicted & actual)),
        false_positives=int(np.sum(predicted & ~actual)),
        true_negatives=int(np.sum(~predicted & ~actual)),
        false_negatives=int(np.sum(~predicted & actual)),
    )


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the threshold among the observed scores that maximises F1.

    Ties go to the highest threshold. When there is no positive, the
    threshold is 1.0 (predict churn only at certainty).
    """
    y, p = _as_arrays(labels, scores)
    if y.sum() == 0:
        return 1.0
    thresholds, true_positives, false_positives = _threshold_counts(y, p)
    false_negatives = y.sum() - true_positives
    f1 = 2 * true_positives / (2 * true_positives + false_positives + false_negatives)
    return float(thresholds[int(np.argmax(f1))])


def cumulative_gain(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the cumulative gain curve: share of users targeted and of churners found.

    Users are targeted in decreasing order of score. Both arrays start at 0 and
    end at 1; the lift at each point is the second divided by the first.
    """
    y, p = _as_arrays(labels, scores)
    _, true_positives, false_positives = _threshold_counts(y, p)
    targeted = np.r_[0.0, (true_positives + false_positives) / y.size]
    found = np.r_[0.0, true_positives / max(y.sum(), 1.0)]
    return targeted, found


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Return ROC AUC, PR AUC (average precision), log loss and Brier score."""
    return {
        "roc_auc": roc_auc(labels, scores),
        "pr_auc": average_precision(labels, scores),
        "log_loss": log_loss(labels, scores),
        "brier": brier_score(labels, scores),
    }


def rmse(predictions: DataFrame, label: str = "rating", prediction: str = "prediction") -> float:
    """Return the root mean squared error over the rows of ``predictions``; NaN when empty."""
    row = predictions.select(
        sf.sqrt(sf.avg(sf.pow(sf.col(label) - sf.col(prediction), 2))).alias("rmse")
    ).first()
    value = row["rmse"] if row is not None else None
    return math.nan if value is None else float(value)


def ranking_metrics(
    recommendations: DataFrame,
    relevant: DataFrame,
    k: int,
    user_column: str = "user_id",
    item_column: str = "song_id",
    rank_column: str = "recommendation_rank",
) -> dict[str, float]:
    """Compute precision, recall, NDCG and MAP at ``k`` with binary relevance.

    Parameters
    ----------
    recommendations : DataFrame
        One row per recommended item: user, item and 1-based rank.
    relevant : DataFrame
        One row per relevant (user, item) pair, such as held-out ratings.
    k : int
        Cut-off rank.
    user_column, item_column, rank_column : str
        Column names in the two frames.

    Returns
    -------
    dict
        ``precision_at_k``, ``recall_at_k``, ``ndcg_at_k``, ``map_at_k`` (means
        over the users that have at least one relevant item, a user without
        recommendations counting 0) and ``users`` (how many users were scored).

    Notes
    -----
    Per user with relevant set R and hits at ranks r_1 < r_2 < ... within the
    first k: precision = hits / k; recall = hits / |R|;
    NDCG = sum(1 / log2(r_i + 1)) / sum_{i=1..min(|R|, k)} 1 / log2(i + 1);
    average precision = sum_i (i / r_i) / min(|R|, k). These are the
    definitions of ``pyspark.mllib.evaluation.RankingMetrics`` in Spark 4.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    relevant_pairs = relevant.select(user_column, item_column).distinct()
    relevant_counts = relevant_pairs.groupBy(user_column).agg(sf.count("*").alias("relevant_count"))
    hits = (
        recommendations.filter(sf.col(rank_column) <= k)
        .select(user_column, item_column, rank_column)
        .join(relevant_pairs, on=[user_column, item_column], how="inner")
    )
    hit_order = Window.partitionBy(user_column).orderBy(rank_column)
    per_hit = hits.select(
        user_column,
        (1.0 / sf.log2(sf.col(rank_column) + 1.0)).alias("gain"),
        (sf.row_number().over(hit_order) / sf.col(rank_column)).alias("precision_at_hit"),
    )
    per_user_hits = per_hit.groupBy(user_column).agg(
        sf.count("*").alias("hit_count"),
        sf.sum("gain").alias("dcg"),
        sf.sum("precision_at_hit").alias("precision_sum"),
    )
    ideal_gains = [sum(1.0 / math.log2(i + 1.0) for i in range(1, n + 1)) for n in range(1, k + 1)]
    ideal_lookup = sf.array(*[sf.lit(value) for value in ideal_gains])
    capped = sf.least(sf.col("relevant_count"), sf.lit(k))
    per_user = (
        relevant_counts.join(per_user_hits, on=user_column, how="left")
        .fillna(0, subset=["hit_count", "dcg", "precision_sum"])
        .select(
            (sf.col("hit_count") / sf.lit(float(k))).alias("precision"),
            (sf.col("hit_count") / sf.col("relevant_count")).alias("recall"),
            (sf.col("dcg") / sf.element_at(ideal_lookup, capped.cast("int"))).alias("ndcg"),
            (sf.col("precision_sum") / capped).alias("average_precision"),
        )
    )
    row = per_user.agg(
        sf.count("*").alias("users"),
        sf.avg("precision").alias("precision"),
        sf.avg("recall").alias("recall"),
        sf.avg("ndcg").alias("ndcg"),
        sf.avg("average_precision").alias("map"),
    ).first()
    users = int(row["users"]) if row is not None else 0

    def mean(name: str) -> float:
        return float(row[name]) if users else math.nan

    return {
        "precision_at_k": mean("precision"),
        "recall_at_k": mean("recall"),
        "ndcg_at_k": mean("ndcg"),
        "map_at_k": mean("map"),
        "users": users,
    }
