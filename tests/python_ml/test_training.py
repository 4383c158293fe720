"""End-to-end training on the golden dbt build: metrics, written-back tables, models, report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as sf

from python_ml import churn, data, recommend, training
from python_ml.report import ReportData, plot_roc

CHARTS = (
    "churn_roc.png",
    "churn_gain_lift.png",
    "churn_feature_weights.png",
    "rating_distribution.png",
    "recommender_metrics.png",
)
USER_OFFSET = 2**33
SONG_OFFSET = 2**35


def _options(
    schemas: data.Schemas, tmp_path: Path, run_id: str, **overrides
) -> training.TrainingOptions:
    settings = {
        "run_id": run_id,
        "schemas": schemas,
        "reports_dir": tmp_path / "reports",
        "folds": 2,
        "grid": "quick",
        "als_grid": "quick",
        "top_n": 5,
        "checkpoint_dir": tmp_path / "checkpoints",
        "truth_dir": tmp_path / "no-ground-truth",
    }
    settings.update(overrides)
    return training.TrainingOptions(**settings)


def _ids(frame, column: str) -> set[int]:
    return {row[column] for row in frame.select(column).distinct().collect()}


def _assert_unit_interval(value: float, name: str) -> None:
    assert value is not None, name
    assert 0.0 <= value <= 1.0, name


@pytest.fixture(scope="module")
def golden_run(spark, golden_build, tmp_path_factory):
    """One training run of every target on the golden fixture's marts."""
    tmp_path = tmp_path_factory.mktemp("golden-training")
    options = _options(data.Schemas.from_environment(), tmp_path, "golden")
    return training.run_training(spark, options)


@pytest.mark.slow
def test_golden_metrics_keys_in_range(golden_run):
    metrics = json.loads((golden_run.run_dir / "metrics.json").read_text())
    assert metrics["run_id"] == "golden"
    assert metrics["seed"] == 42
    churn_section = metrics["churn"]
    assert churn_section["data"]["users"] == 30
    assert churn_section["data"]["train_users"] + churn_section["data"]["test_users"] == 30
    assert churn_section["split"] == {"seed": 42, "fold_seed": 43, "test_fraction": 0.2, "folds": 2}
    assert churn_section["features"]["windows_days"] == [1, 3, 7, 14, 30]
    assert churn_section["oracle"] is None
    assert set(churn_section["models"]) == set(churn.MODELS)
    for name, model in churn_section["models"].items():
        test = model["test"]
        for key in ("roc_auc", "pr_auc", "brier"):
            _assert_unit_interval(test[key], f"{name} {key}")
        assert test["log_loss"] >= 0.0
        cells = test["confusion_matrix"]
        total = sum(
            cells[key]
            for key in ("true_positives", "false_positives", "true_negatives", "false_negatives")
        )
        assert total == churn_section["data"]["test_users"]
        assert model["chosen_params"] == model["grid"][0]
        assert model["cv"]["threshold"] is not None
        assert len(model["feature_weights"]) >= len(churn_section["features"]["activity_columns"])
    ensemble = churn_section["ensemble"]
    assert ensemble["members"] == sorted(churn.MODELS)
    assert len(ensemble["cv"]["fold_auc"]) == 2
    for key in ("roc_auc", "pr_auc", "brier"):
        _assert_unit_interval(ensemble["test"][key], f"mean_of_models {key}")
    cells = ensemble["test"]["confusion_matrix"]
    assert (
        sum(cells[key] for key in cells if key.endswith(("_positives", "_negatives")))
        == (churn_section["data"]["test_users"])
    )
    assert churn_section["best_model"] in {*churn.MODELS, training.ENSEMBLE_NAME}

    rec = metrics["recommender"]
    assert rec["data"]["pairs"] == 199
    assert rec["data"]["train_pairs"] + rec["data"]["test_pairs"] == 199
    assert 0 < rec["data"]["scored_test_pairs"] <= rec["data"]["test_pairs"]
    for name in ("als", "als_plain", "global_mean", "user_mean"):
        assert rec["rmse"][name] > 0.0, name
    assert rec["ranking"]["k"] == 5
    assert set(rec["ranking"]["held_out"]) == {"als_implicit", "als_explicit", "popularity"}
    for name, ranking in rec["ranking"]["held_out"].items():
        assert ranking["users"] > 0
        for key in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"):
            _assert_unit_interval(ranking[key], f"{name} {key}")
    rating_model = rec["rating_model"]
    assert rating_model["chosen_params"] in recommend.ALS_GRIDS["quick"]
    assert rating_model["biased"] == recommend.is_biased(rating_model["chosen_params"])
    # The plain point is refitted and reported whichever point wins.
    assert rating_model["plain_params"] == recommend.ALS_GRIDS["quick"][1]
    assert not recommend.is_biased(rating_model["plain_params"])
    tuned = {str(result["params"]): result for result in rating_model["tuning"]["results"]}
    assert set(tuned) == {str(point) for point in recommend.ALS_GRIDS["quick"]}
    best = min(tuned.values(), key=lambda result: result["validation_rmse"])
    assert best["params"] == rating_model["chosen_params"]
    assert rec["ranking_model"]["chosen_params"] == recommend.IMPLICIT_ALS_GRIDS["quick"][0]
    assert rec["ranking"]["against_oracle"] is None
    stages = ("total", "churn", "churn.gbt.tune", "recommender.fit", "recommender.implicit_fit")
    for stage in stages:
        assert metrics["timings"][stage]["seconds"] >= 0.0


@pytest.mark.slow
def test_golden_tables_written_back(spark, golden_run):
    schemas = data.Schemas.from_environment()
    predictions = spark.table(schemas.output(data.CHURN_PREDICTIONS)).cache()
    population = _ids(spark.table(schemas.mart(data.CHURN_LABELS)), "user_id")
    assert predictions.columns == ["user_id", "churn_probability", "model_name", "run_id"]
    # One row per population user for each model and for their average.
    assert predictions.count() == (len(churn.MODELS) + 1) * len(population)
    assert _ids(predictions, "user_id") == population
    assert _ids(predictions, "model_name") == {*churn.MODELS, training.ENSEMBLE_NAME}
    assert _ids(predictions, "run_id") == {"golden"}
    assert predictions.filter(~sf.col("churn_probability").between(0.0, 1.0)).count() == 0

    recommendations = spark.table(schemas.output(data.SONG_RECOMMENDATIONS)).cache()
    ratings = spark.table(schemas.mart(data.USER_SONG_RATINGS))
    assert recommendations.columns == [
        "user_id",
        "recommendation_rank",
        "song_id",
        "score",
        "run_id",
    ]
    assert _ids(recommendations, "user_id") <= _ids(ratings, "user_id")
    assert recommendations.join(ratings, on=["user_id", "song_id"]).count() == 0
    assert _ids(recommendations, "recommendation_rank") <= set(range(1, 6))
    assert recommendations.filter(sf.col("score").isNull()).count() == 0


@pytest.mark.slow
def test_golden_saved_models_reload_and_score(spark, golden_run):
    schemas = data.Schemas.from_environment()
    features = spark.table(schemas.mart(data.CHURN_FEATURES))
    for name in churn.MODELS:
        model = churn.load_model(golden_run.run_dir / "models" / "churn" / name)
        scored = churn.score(model, features)
        assert scored.count() == features.count()
        assert scored.filter(~sf.col("churn_probability").between(0.0, 1.0)).count() == 0
    ratings = spark.table(schemas.mart(data.USER_SONG_RATINGS))
    for kind in ("explicit", "implicit"):
        path = golden_run.run_dir / "models" / "recommender" / kind
        recommender = recommend.Recommender.load(spark, path)
        lists = recommender.recommend(ratings.select("user_id").limit(3), n=2)
        assert 0 < lists.count() <= 6, kind


@pytest.mark.slow
def test_golden_report_page_shows_charts(golden_run):
    page = golden_run.report_path.read_text(encoding="utf-8")
    assert golden_run.report_path == golden_run.run_dir / "index.html"
    for chart in CHARTS:
        assert (golden_run.run_dir / chart).stat().st_size > 10_000, chart
        assert f'src="{chart}"' in page, chart
    assert "logistic_regression" in page
    assert "NDCG@5" in page


@pytest.mark.slow
def test_training_handles_ids_above_2_31(spark, golden_build, tmp_path):
    source = data.Schemas.from_environment()
    shifted = data.Schemas(f"{source.base}_bigids")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {shifted.marts}")
    for name in (data.CHURN_FEATURES, data.CHURN_LABELS, data.USER_SONG_RATINGS):
        frame = spark.table(source.mart(name)).withColumn(
            "user_id", sf.col("user_id") + USER_OFFSET
        )
        if "song_id" in frame.columns:
            frame = frame.withColumn("song_id", sf.col("song_id") + SONG_OFFSET)
        frame.write.mode("overwrite").format("parquet").saveAsTable(shifted.mart(name))
    options = _options(shifted, tmp_path, "bigids", models=("logistic_regression",))
    training.run_training(spark, options)

    ratings = spark.table(shifted.mart(data.USER_SONG_RATINGS))
    predictions = spark.table(shifted.output(data.CHURN_PREDICTIONS))
    recommendations = spark.table(shifted.output(data.SONG_RECOMMENDATIONS))
    population = _ids(spark.table(shifted.mart(data.CHURN_LABELS)), "user_id")
    assert min(population) > 2**31
    assert _ids(predictions, "user_id") == population
    assert recommendations.count() > 0
    assert _ids(recommendations, "user_id") <= _ids(ratings, "user_id")
    assert _ids(recommendations, "song_id") <= _ids(ratings, "song_id")
    assert recommendations.join(ratings, on=["user_id", "song_id"]).count() == 0


def test_missing_mart_names_table_and_build_command(spark, tmp_path):
    options = _options(data.Schemas("music_box_absent"), tmp_path, "absent", targets=("churn",))
    with pytest.raises(data.MissingTableError) as raised:
        training.run_training(spark, options)
    assert "music_box_absent_marts.churn_features" in str(raised.value)
    assert "dbt build" in str(raised.value)


def test_json_ready_drops_nan_and_numpy():
    import numpy as np

    converted = training.json_ready(
        {"a": np.float64(0.5), "b": [math.nan, np.int64(3)], "c": (1, math.inf)}
    )
    assert converted == {"a": 0.5, "b": [None, 3], "c": [1, None]}
    assert json.loads(json.dumps(converted, allow_nan=False)) == converted


def test_roc_chart_is_a_png(tmp_path):
    import numpy as np
    from matplotlib.image import imread

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 100).astype(float)
    scores = np.clip(labels * 0.3 + rng.random(100) * 0.7, 0, 1)
    report_data = ReportData(churn_scores={"a": (labels, scores), "b": (labels, rng.random(100))})
    path = plot_roc(report_data, tmp_path / "roc.png")
    image = imread(path)
    assert image.shape[0] > 400
    assert image.shape[1] > 400


def _predictions(probabilities: list[float], folds: list[int] | None = None):
    frame = pd.DataFrame(
        {
            "user_id": [10, 11, 12, 13],
            "label": [1.0, 0.0, 1.0, 0.0],
            churn.PROBABILITY_COLUMN: probabilities,
        }
    )
    if folds is not None:
        frame["fold"] = folds
    return frame


def test_mean_of_models_averages_members():
    folds = [0, 0, 1, 1]
    # Alone, a ranks user 13 above user 12 in fold 1, and b ranks 11 above 10
    # in fold 0. Their average ranks both folds right.
    out_of_fold = {
        "a": _predictions([0.9, 0.1, 0.3, 0.4], folds),
        "b": _predictions([0.2, 0.3, 0.9, 0.1], folds),
    }
    test_scores = {"a": _predictions([0.8, 0.6, 0.2, 0.4]), "b": _predictions([0.6, 0.2, 0.6, 0.0])}

    section, tested = training.mean_of_models(out_of_fold, test_scores)

    assert section["members"] == ["a", "b"]
    assert section["cv"]["fold_auc"] == [1.0, 1.0]
    assert section["cv"]["best_cv_auc"] == 1.0
    by_user = tested.set_index("user_id")[churn.PROBABILITY_COLUMN]
    assert by_user.to_dict() == pytest.approx({10: 0.7, 11: 0.4, 12: 0.4, 13: 0.2})
    assert section["test"]["roc_auc"] == pytest.approx(0.875)


def test_mean_of_models_rejects_different_users():
    folds = [0, 0, 1, 1]
    other = _predictions([0.5, 0.5, 0.5, 0.5], folds)
    other["user_id"] = [10, 11, 12, 99]
    out_of_fold = {"a": _predictions([0.9, 0.1, 0.3, 0.4], folds), "b": other}
    test_scores = {"a": _predictions([0.5] * 4), "b": _predictions([0.5] * 4)}

    with pytest.raises(ValueError, match="different users"):
        training.mean_of_models(out_of_fold, test_scores)
