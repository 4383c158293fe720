"""Metric functions of python_ml.evaluate against hand-computed values, scikit-learn and Spark."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.ml.evaluation import RankingEvaluator
from sklearn import metrics as skm

from python_ml import evaluate

# Python workers must run this interpreter, which has pandas and pyarrow.

LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_auc_hand_computed():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
    assert evaluate.roc_auc(LABELS, SCORES) == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half():
    labels = np.array([0, 1, 0, 1])
    scores = np.array([0.5, 0.5, 0.2, 0.9])
    assert evaluate.roc_auc(labels, scores) == pytest.approx(0.875)


def test_roc_auc_single_class_is_nan():
    assert math.isnan(evaluate.roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_average_precision_hand_computed():
    # Recall 0.5 at precision 1, then recall 1 at precision 2/3.
    assert evaluate.average_precision(LABELS, SCORES) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_log_loss_and_brier_hand_computed():
    labels = np.array([1, 0])
    scores = np.array([0.8, 0.4])
    assert evaluate.log_loss(labels, scores) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert evaluate.brier_score(labels, scores) == pytest.approx((0.2**2 + 0.4**2) / 2)


def test_log_loss_clips_certain_mistakes():
    loss = evaluate.log_loss(np.array([1]), np.array([0.0]))
    assert math.isfinite(loss)
    assert loss == pytest.approx(-math.log(1e-15))


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(23)
    labels = rng.integers(0, 2, 500)
    # Rounded scores create ties, which both implementations must treat alike.
    scores = np.round(np.clip(labels * 0.3 + rng.normal(0.4, 0.25, 500), 0, 1), 2)
    assert evaluate.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores))
    assert evaluate.average_precision(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores)
    )
    assert evaluate.log_loss(labels, scores) == pytest.approx(
        skm.log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15))
    )
    assert evaluate.brier_score(labels, scores) == pytest.approx(
        skm.brier_score_loss(labels, scores)
    )


def test_roc_curve_matches_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)
    false_rate, true_rate = evaluate.roc_curve(labels, scores)
    expected_false_rate, expected_true_rate, _ = skm.roc_curve(
        labels, scores, drop_intermediate=False
    )
    np.testing.assert_allclose(false_rate, expected_false_rate)
    np.testing.assert_allclose(true_rate, expected_true_rate)


def test_confusion_matrix_hand_computed():
    matrix = evaluate.confusion_matrix(LABELS, SCORES, threshold=0.35)
    assert matrix.true_positives == 2
    assert matrix.false_positives == 1
    assert matrix.true_negatives == 1
    assert matrix.false_negatives == 0
    assert matrix.precision == pytest.approx(2 / 3)
    assert matrix.recall == pytest.approx(1.0)
    assert matrix.f1 == pytest.approx(0.8)


def test_best_f1_threshold_hand_computed():
    # F1 at thresholds 0.8, 0.4, 0.35, 0.1: 2/3, 1/2, 4/5, 2/3.
    assert evaluate.best_f1_threshold(LABELS, SCORES) == pytest.approx(0.35)


def test_best_f1_threshold_matches_sklearn_f1():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 2, 300)
    scores = np.round(np.clip(labels * 0.2 + rng.random(300) * 0.8, 0, 1), 3)
    threshold = evaluate.best_f1_threshold(labels, scores)
    best = max(skm.f1_score(labels, scores >= t) for t in np.unique(scores))
    assert skm.f1_score(labels, scores >= threshold) == pytest.approx(best)


def test_cumulative_gain_ends_at_one():
    targeted, found = evaluate.cumulative_gain(LABELS, SCORES)
    assert targeted[0] == 0.0
    assert found[0] == 0.0
    assert targeted[-1] == pytest.approx(1.0)
    assert found[-1] == pytest.approx(1.0)
    # Highest score first: the first user targeted (a quarter) is a churner.
    assert found[1] == pytest.approx(0.5)


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate.roc_auc(np.array([0, 1]), np.array([0.5]))


# --- Spark metrics -------------------------------------------------------------

RECOMMENDATIONS = [
    (1, 1, 10),
    (1, 2, 20),
    (1, 3, 30),
    (2, 1, 10),
    (2, 2, 20),
    (4, 1, 10),
]
# User 3 has a relevant song but no recommendation; user 4 has nothing relevant.
RELEVANT = [(1, 20), (1, 40), (2, 10), (3, 50)]


@pytest.fixture()
def ranking_frames(spark):
    recommendations = spark.createDataFrame(
        RECOMMENDATIONS, "user_id bigint, recommendation_rank int, song_id bigint"
    )
    relevant = spark.createDataFrame(RELEVANT, "user_id bigint, song_id bigint")
    return recommendations, relevant


def test_ranking_metrics_hand_computed(ranking_frames):
    recommendations, relevant = ranking_frames
    result = evaluate.ranking_metrics(recommendations, relevant, k=3)
    ndcg_user_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert result["users"] == 3
    assert result["precision_at_k"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    assert result["recall_at_k"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["ndcg_at_k"] == pytest.approx((ndcg_user_1 + 1 + 0) / 3)
    assert result["map_at_k"] == pytest.approx((0.25 + 1 + 0) / 3)


def test_ranking_metrics_match_ranking_evaluator(spark):
    rng = np.random.default_rng(3)
    recommendations, relevant, rows = [], [], []
    for user in range(40):
        predicted = rng.choice(30, size=int(rng.integers(0, 8)), replace=False).tolist()
        labelled = rng.choice(30, size=int(rng.integers(1, 6)), replace=False).tolist()
        recommendations += [(user, rank, song) for rank, song in enumerate(predicted, start=1)]
        relevant += [(user, song) for song in labelled]
        rows.append(([float(song) for song in predicted], [float(song) for song in labelled]))
    k = 5
    ours = evaluate.ranking_metrics(
        spark.createDataFrame(
            recommendations, "user_id long, recommendation_rank int, song_id long"
        ),
        spark.createDataFrame(relevant, "user_id long, song_id long"),
        k=k,
    )
    arrays = spark.createDataFrame(rows, "prediction array<double>, label array<double>")
    names = {
        "precision_at_k": "precisionAtK",
        "recall_at_k": "recallAtK",
        "ndcg_at_k": "ndcgAtK",
        "map_at_k": "meanAveragePrecisionAtK",
    }
    for key, spark_name in names.items():
        expected = RankingEvaluator(metricName=spark_name, k=k).evaluate(arrays)
        assert ours[key] == pytest.approx(expected), key


def test_ranking_metrics_reject_zero_k(ranking_frames):
    recommendations, relevant = ranking_frames
    with pytest.raises(ValueError, match="k must be at least 1"):
        evaluate.ranking_metrics(recommendations, relevant, k=0)


def test_rmse_hand_computed(spark):
    frame = spark.createDataFrame(
        [(1.0, 2.0), (3.0, 3.0), (5.0, 1.0)], "rating double, prediction double"
    )
    assert evaluate.rmse(frame) == pytest.approx(math.sqrt((1 + 0 + 16) / 3))
