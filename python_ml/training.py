"""Orchestration of ``musicbox train``: read the marts, train, evaluate, write back, report.

One run has an id and a folder ``<reports>/<run id>/`` that receives
``metrics.json`` (keys documented in ``docs/training.md``), the fitted models
under ``models/``, the PNG charts and ``index.html``. Predictions and
recommendations are written back as tables of the ``<schema>_ml`` schema.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf

from python_ml import churn, config, data, evaluate, oracle, recommend, report, splits
from python_ml.features import (
    LABEL_COLUMN,
    derived_expressions,
    discover_features,
    labelled_users,
)

logger = logging.getLogger(__name__)

# Name, in metrics, reports and churn_predictions, of the average of the
# churn models' probabilities.
ENSEMBLE_NAME = "mean_of_models"

TARGETS = ("churn", "recommender")


@dataclass(frozen=True)
class TrainingOptions:
    """Everything one training run is configured by.

    Attributes
    ----------
    run_id : str
        Name of the run's report folder and value of the ``run_id`` columns.
    targets : tuple of str
        ``churn``, ``recommender`` or both.
    seed : int
        Seed of every split and model; derived seeds are ``seed + 1``.
    schemas : Schemas
        Schema names of the dbt target.
    reports_dir : Path
        Folder that receives ``<run_id>/``.
    test_fraction : float
        Share of each label's users held out for the churn test metrics.
    folds : int
        Cross-validation folds for tuning the churn models.
    grid : str
        Churn hyperparameter grid, ``quick`` or ``standard``.
    models : tuple of str
        Churn models to train.
    top_n : int
        Length of recommendation lists and the cut-off k of ranking metrics.
    rating_test_fraction : float
        Expected share of (user, song) pairs held out for the recommender test.
    rating_validation_fraction : float
        Expected share of the remaining training pairs used to tune ALS.
    als_grid : str
        ALS hyperparameter grid, ``quick`` or ``standard``.
    checkpoint_dir : Path
        Spark checkpoint folder for ALS; the run's subfolder is removed at the end.
    checkpoint_interval : int
        ALS iterations between checkpoints.
    truth_dir : Path or None
        Generator ground truth; oracle metrics are added when it exists.
    write_tables : bool
        Write ``churn_predictions`` and ``song_recommendations`` back.
    """

    run_id: str
    targets: tuple[str, ...] = TARGETS
    seed: int = 42
    schemas: data.Schemas = field(default_factory=data.Schemas.from_environment)
    reports_dir: Path = Path("reports")
    test_fraction: float = 0.2
    folds: int = 3
    grid: str = "standard"
    models: tuple[str, ...] = tuple(churn.MODELS)
    top_n: int = 10
    rating_test_fraction: float = 0.2
    rating_validation_fraction: float = 0.1
    als_grid: str = "standard"
    checkpoint_dir: Path = Path("checkpoints")
    checkpoint_interval: int = 5
    truth_dir: Path | None = None
    write_tables: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Return the options as JSON-ready values."""
        values = asdict(self)
        values["schemas"] = {"base": self.schemas.base, "marts": self.schemas.marts}
        values["schemas"]["ml"] = self.schemas.ml
        for key in ("reports_dir", "checkpoint_dir", "truth_dir"):
            values[key] = None if values[key] is None else str(values[key])
        values["targets"] = list(self.targets)
        values["models"] = list(self.models)
        return values


@dataclass
class TrainingResult:
    """Outputs of one training run: its metrics, folder and report page."""

    metrics: dict[str, Any]
    run_dir: Path
    report_path: Path


def default_run_id() -> str:
    """Return a run id from the current UTC time, such as ``20170512T093000Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def default_reports_dir() -> Path:
    """Return ``MUSICBOX_REPORTS_DIR``, or ``reports/`` under the project root."""
    configured = os.environ.get("MUSICBOX_REPORTS_DIR")
    return Path(configured) if configured else config.project_dir() / "reports"


def default_truth_dir() -> Path:
    """Return the ground-truth folder that ``musicbox generate`` writes by default.

    It is ``$MUSICBOX_DATA_DIR/ground_truth``.
    """
    return config.data_dir() / "ground_truth"


class StageLog:
    """Logs the start, end and duration of each stage and keeps the timings."""

    def __init__(self) -> None:
        self.timings: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as the stage ``name``, logging any error it raises."""
        logger.info("stage %s started", name)
        started_at, start = time.time(), time.perf_counter()
        try:
            yield
        except Exception as error:
            logger.error(
                "stage %s failed after %.1f s: %s", name, time.perf_counter() - start, error
            )
            raise
        seconds = time.perf_counter() - start
        self.timings[name] = {"seconds": seconds, "started_at": started_at, "ended_at": time.time()}
        logger.info("stage %s finished in %.1f s", name, seconds)


def json_ready(value: Any) -> Any:
    """Convert NumPy scalars and arrays to Python values and NaN or infinity to None."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_training(spark: SparkSession, options: TrainingOptions) -> TrainingResult:
    """Run the requested targets and write the metrics, models, tables and report.

    Raises
    ------
    MissingTableError
        When a mart that a target reads has not been built.
    """
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        raise ValueError(f"unknown training targets {sorted(unknown)}; choose from {TARGETS}")
    run_dir = options.reports_dir / options.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = StageLog()
    report_data = report.ReportData()
    metrics: dict[str, Any] = {
        "run_id": options.run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": options.seed,
        "options": options.as_dict(),
        "spark_version": spark.version,
    }
    truth = oracle.GroundTruth.open(options.truth_dir)
    metrics["ground_truth"] = None if truth is None else str(truth.path)
    with stages.stage("total"):
        if "churn" in options.targets:
            with stages.stage("churn"):
                metrics["churn"] = train_churn(spark, options, run_dir, stages, report_data, truth)
        if "recommender" in options.targets:
            with stages.stage("recommender"):
                metrics["recommender"] = train_recommender(
                    spark, options, run_dir, stages, report_data, truth
                )
    metrics["timings"] = stages.timings
    metrics_path = run_dir / "metrics.json"
    metrics_path.write_text(json.dumps(json_ready(metrics), indent=2, allow_nan=False) + "\n")
    logger.info("wrote %s", metrics_path)
    report_path = report.write_report(run_dir, json_ready(metrics), report_data)
    return TrainingResult(metrics=metrics, run_dir=run_dir, report_path=report_path)


# --- Churn -----------------------------------------------------------------


def _label_arrays(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    return frame[LABEL_COLUMN].to_numpy(dtype=float), frame[churn.PROBABILITY_COLUMN].to_numpy(
        dtype=float
    )


def cross_validate(
    model: churn.ChurnModel,
    folded: DataFrame,
    spec: Any,
    grid: list[dict[str, Any]],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """Tune one churn model by stratified k-fold cross-validation on the training users.

    Parameters
    ----------
    model : ChurnModel
        The model to tune.
    folded : DataFrame
        Training users with ``label`` and a ``fold`` column from ``assign_folds``.
    spec : FeatureSpec
        The discovered feature columns.
    grid : list of dict
        Parameter points to try.
    folds : int
        Number of folds in ``folded``.
    seed : int
        Seed of the classifier.

    Returns
    -------
    dict
        ``results`` (per point: params, fold AUCs, mean AUC), ``best_params``,
        ``best_cv_auc``, and ``threshold``: the score that maximises F1 on the
        best point's out-of-fold predictions, the validation data for every
        training user.
    pandas.DataFrame
        The best point's out-of-fold predictions: ``user_id``, ``fold``,
        ``label`` and ``churn_probability`` of every training user.
    """
    results = []
    best_index, best_auc, best_oof, best_frame = 0, -math.inf, None, None
    for index, params in enumerate(grid):
        fold_aucs, labels, scores, frames = [], [], [], []
        for fold in range(folds):
            fitted = model.fit(folded.filter(sf.col("fold") != fold), spec, params, seed)
            held_out = churn.score(fitted, folded.filter(sf.col("fold") == fold)).toPandas()
            held_out["fold"] = fold
            y, p = _label_arrays(held_out)
            fold_aucs.append(evaluate.roc_auc(y, p))
            labels.append(y)
            scores.append(p)
            frames.append(held_out)
        finite = [auc for auc in fold_aucs if math.isfinite(auc)]
        mean_auc = float(np.mean(finite)) if finite else math.nan
        results.append({"params": params, "fold_auc": fold_aucs, "mean_auc": mean_auc})
        logger.info(
            "%s cv point %d/%d %s: mean AUC %.4f",
            model.name,
            index + 1,
            len(grid),
            params,
            mean_auc,
        )
        if (math.isfinite(mean_auc) and mean_auc > best_auc) or best_oof is None:
            best_index, best_oof = index, (np.concatenate(labels), np.concatenate(scores))
            best_frame = pd.concat(frames, ignore_index=True)
            best_auc = mean_auc if math.isfinite(mean_auc) else -math.inf
    threshold = evaluate.best_f1_threshold(*best_oof)
    tuning = {
        "results": results,
        "best_params": grid[best_index],
        "best_cv_auc": results[best_index]["mean_auc"],
        "threshold": threshold,
        "validation_f1": evaluate.confusion_matrix(*best_oof, threshold).f1,
    }
    return tuning, best_frame


def mean_of_models(
    out_of_fold: dict[str, pd.DataFrame], test_scores: dict[str, pd.DataFrame]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Evaluate the average of the tuned models' churn probabilities as one more candidate.

    The average is cross-validated like a model: its fold AUCs come from the
    members' out-of-fold predictions, so choosing it uses the training users
    only, and its F1 threshold is chosen on those predictions too.

    Parameters
    ----------
    out_of_fold : dict of str to pandas.DataFrame
        Per member model, ``user_id``, ``fold``, ``label`` and
        ``churn_probability`` of every training user (from :func:`cross_validate`).
    test_scores : dict of str to pandas.DataFrame
        Per member model, ``user_id``, ``label`` and ``churn_probability`` of
        every test user.

    Returns
    -------
    dict
        ``members``, ``cv`` (``fold_auc``, ``best_cv_auc``, ``threshold``,
        ``validation_f1``) and ``test`` (the metrics of :func:`evaluate.binary_metrics`
        with a ``confusion_matrix``).
    pandas.DataFrame
        ``user_id``, ``label`` and the averaged ``churn_probability`` of every test user.
    """
    members = sorted(out_of_fold)
    validation = _average_probabilities(out_of_fold, members, ["user_id", "fold", LABEL_COLUMN])
    fold_auc = [
        evaluate.roc_auc(*_label_arrays(validation[validation["fold"] == fold]))
        for fold in sorted(validation["fold"].unique())
    ]
    finite = [auc for auc in fold_auc if math.isfinite(auc)]
    y_valid, p_valid = _label_arrays(validation)
    threshold = evaluate.best_f1_threshold(y_valid, p_valid)
    tested = _average_probabilities(test_scores, members, ["user_id", LABEL_COLUMN])
    y, p = _label_arrays(tested)
    test_metrics = evaluate.binary_metrics(y, p)
    test_metrics["confusion_matrix"] = evaluate.confusion_matrix(y, p, threshold).as_dict()
    section = {
        "members": members,
        "cv": {
            "fold_auc": fold_auc,
            "best_cv_auc": float(np.mean(finite)) if finite else math.nan,
            "threshold": threshold,
            "validation_f1": evaluate.confusion_matrix(y_valid, p_valid, threshold).f1,
        },
        "test": test_metrics,
    }
    return section, tested


def _average_probabilities(
    frames: dict[str, pd.DataFrame], members: list[str], keys: list[str]
) -> pd.DataFrame:
    """Join the members' predictions on ``keys`` and average their probabilities."""
    merged = None
    for name in members:
        frame = frames[name][[*keys, churn.PROBABILITY_COLUMN]].rename(
            columns={churn.PROBABILITY_COLUMN: name}
        )
        merged = frame if merged is None else merged.merge(frame, on=keys, how="inner")
    if len(merged) != len(frames[members[0]]):
        raise ValueError(
            "cannot average the churn models: they scored different users "
            f"({len(merged)} in common out of {len(frames[members[0]])})"
        )
    merged[churn.PROBABILITY_COLUMN] = merged[members].mean(axis=1)
    return merged[[*keys, churn.PROBABILITY_COLUMN]]


def train_churn(
    spark: SparkSession,
    options: TrainingOptions,
    run_dir: Path,
    stages: StageLog,
    report_data: report.ReportData,
    truth: oracle.GroundTruth | None,
) -> dict[str, Any]:
    """Train, tune and evaluate every requested churn model; return the ``churn`` metrics."""
    features = data.read_mart(spark, options.schemas, data.CHURN_FEATURES)
    labels = data.read_mart(spark, options.schemas, data.CHURN_LABELS)

    with stages.stage("churn.prepare"):
        spec = discover_features(features.schema)
        users = labelled_users(features, labels).cache()
        train, test = splits.stratified_user_split(users, options.test_fraction, options.seed)
        train = train.cache()
        test = test.cache()
        folded = splits.assign_folds(train, options.folds, options.seed).cache()
        sizes = _churn_sizes(features, users, train, test)
        logger.info(
            "churn data: %d users (%.1f%% churned), %d train, %d test, %d input columns",
            sizes["users"],
            100 * sizes["churn_rate"],
            sizes["train_users"],
            sizes["test_users"],
            len(spec.input_columns),
        )

    section: dict[str, Any] = {
        "data": sizes,
        "features": {
            "windows_days": spec.windows,
            "activity_columns": spec.activity_columns,
            "recency_columns": spec.recency_columns,
            "categorical_columns": spec.categorical_columns,
            "ignored_columns": spec.ignored_columns,
            "derived_columns": [name for name, _ in derived_expressions(spec)],
            "recency_fill_days": spec.recency_fill,
        },
        "split": {
            "seed": options.seed,
            "fold_seed": options.seed + 1,
            "test_fraction": options.test_fraction,
            "folds": options.folds,
        },
        "grid_name": options.grid,
        "models": {},
    }

    predictions, out_of_fold, test_scores = [], {}, {}
    for name in options.models:
        model = churn.get_model(name)
        model_metrics, all_scores, out_of_fold[name], test_scores[name] = _train_one_churn_model(
            model, spec, users, train, test, folded, options, run_dir, stages, report_data
        )
        section["models"][name] = model_metrics
        predictions.append(all_scores)

    candidates = {name: metrics["cv"] for name, metrics in section["models"].items()}
    section["ensemble"] = None
    if len(options.models) > 1:
        with stages.stage("churn.mean_of_models"):
            section["ensemble"], tested = mean_of_models(out_of_fold, test_scores)
            report_data.churn_scores[ENSEMBLE_NAME] = _label_arrays(tested)
            predictions.append(_mean_prediction(predictions, ENSEMBLE_NAME))
        candidates[ENSEMBLE_NAME] = section["ensemble"]["cv"]
        logger.info(
            "%s of %s: mean fold AUC %.4f, test ROC AUC %.4f",
            ENSEMBLE_NAME,
            ", ".join(section["ensemble"]["members"]),
            section["ensemble"]["cv"]["best_cv_auc"],
            section["ensemble"]["test"]["roc_auc"],
        )

    section["best_model"] = max(
        candidates, key=lambda key: _finite_or(candidates[key]["best_cv_auc"], -1.0)
    )

    section["oracle"] = _churn_oracle(truth, test, report_data)

    if options.write_tables:
        with stages.stage("churn.write"):
            table = _union_all(predictions).withColumn("run_id", sf.lit(options.run_id))
            section["table"] = data.write_output(
                spark, options.schemas, data.CHURN_PREDICTIONS, table
            )

    for frame in (folded, test, train, users):
        frame.unpersist()
    return section


def _churn_sizes(
    features: DataFrame, users: DataFrame, train: DataFrame, test: DataFrame
) -> dict[str, Any]:
    counts = users.groupBy(LABEL_COLUMN).count().collect()
    churned = sum(row["count"] for row in counts if row[LABEL_COLUMN] == 1.0)
    total = sum(row["count"] for row in counts)
    if total == 0:
        raise ValueError("churn_features and churn_labels share no user_id: nothing to train on")
    return {
        "feature_rows": features.count(),
        "users": total,
        "churned_users": churned,
        "churn_rate": churned / total,
        "train_users": train.count(),
        "test_users": test.count(),
        "test_churned_users": test.filter(sf.col(LABEL_COLUMN) == 1.0).count(),
    }


def _mean_prediction(predictions: list[DataFrame], model_name: str) -> DataFrame:
    """Average the models' probabilities per user, in the shape of the predictions table."""
    return (
        _union_all(predictions)
        .groupBy("user_id")
        .agg(sf.avg(churn.PROBABILITY_COLUMN).alias(churn.PROBABILITY_COLUMN))
        .select("user_id", churn.PROBABILITY_COLUMN, sf.lit(model_name).alias("model_name"))
    )


def _finite_or(value: float | None, default: float) -> float:
    return value if value is not None and math.isfinite(value) else default


def _union_all(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _train_one_churn_model(
    model: churn.ChurnModel,
    spec: Any,
    users: DataFrame,
    train: DataFrame,
    test: DataFrame,
    folded: DataFrame,
    options: TrainingOptions,
    run_dir: Path,
    stages: StageLog,
    report_data: report.ReportData,
) -> tuple[dict[str, Any], DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tune, refit on all training users, evaluate on the test users and save one model.

    Returns the model's metrics, its scores of every user (for the predictions
    table), its out-of-fold predictions and its test predictions.
    """
    grid = model.param_grid(options.grid)
    with stages.stage(f"churn.{model.name}.tune"):
        tuning, out_of_fold = cross_validate(model, folded, spec, grid, options.folds, options.seed)
    with stages.stage(f"churn.{model.name}.fit"):
        fitted = model.fit(train, spec, tuning["best_params"], options.seed)
    with stages.stage(f"churn.{model.name}.evaluate"):
        scored = churn.score(fitted, test).toPandas()
        y, p = _label_arrays(scored)
        test_metrics = evaluate.binary_metrics(y, p)
        matrix = evaluate.confusion_matrix(y, p, tuning["threshold"])
        test_metrics["confusion_matrix"] = matrix.as_dict()
        weights = model.feature_weights(fitted, test)
        report_data.churn_scores[model.name] = (y, p)
        report_data.feature_weights[model.name] = weights
    logger.info(
        "%s test: ROC AUC %.4f, PR AUC %.4f, log loss %.4f, Brier %.4f, F1 %.3f at %.3f",
        model.name,
        test_metrics["roc_auc"],
        test_metrics["pr_auc"],
        test_metrics["log_loss"],
        test_metrics["brier"],
        matrix.f1,
        matrix.threshold,
    )
    model_dir = run_dir / "models" / "churn" / model.name
    churn.save_model(fitted, model_dir)
    all_scores = churn.score(fitted, users).select(
        "user_id", churn.PROBABILITY_COLUMN, sf.lit(model.name).alias("model_name")
    )
    metrics = {
        "grid": grid,
        "cv": tuning,
        "chosen_params": tuning["best_params"],
        "test": test_metrics,
        "weights_kind": "standardised_coefficients" if model.scale_features else "importances",
        "feature_weights": weights,
        "model_path": str(model_dir),
    }
    return metrics, all_scores, out_of_fold, scored


def _churn_oracle(
    truth: oracle.GroundTruth | None, test: DataFrame, report_data: report.ReportData
) -> dict[str, Any] | None:
    """Score the ground-truth churn probabilities against the realised test labels."""
    if truth is None:
        return None
    labelled = test.select("user_id", LABEL_COLUMN).toPandas()
    probabilities = truth.churn_probabilities(labelled["user_id"].tolist())
    matched = labelled.merge(probabilities, on="user_id", how="inner")
    if len(matched) < len(labelled):
        logger.warning(
            "ground truth %s lacks %d of %d test users; the oracle AUC covers the rest",
            truth.path,
            len(labelled) - len(matched),
            len(labelled),
        )
    if matched.empty:
        return {"test_users": 0, "roc_auc": None}
    y = matched[LABEL_COLUMN].to_numpy(dtype=float)
    p = matched["churn_probability"].to_numpy(dtype=float)
    report_data.oracle_churn = (y, p)
    result = {"test_users": len(matched), **evaluate.binary_metrics(y, p), "observed": None}
    logger.info("oracle test ROC AUC %.4f on %d users", result["roc_auc"], len(matched))
    if oracle.OBSERVED_COLUMN in matched.columns:
        observed = matched[oracle.OBSERVED_COLUMN].to_numpy(dtype=float)
        report_data.observed_oracle_churn = (y, observed)
        result["observed"] = evaluate.binary_metrics(y, observed)
        logger.info(
            "oracle test ROC AUC from the observed days %.4f", result["observed"]["roc_auc"]
        )
    return result


# --- Recommender -------------------------------------------------------------


def tune_als(
    prepared: PreparedRatings,
    grid: list[dict[str, Any]],
    options: TrainingOptions,
) -> dict[str, Any]:
    """Fit explicit ALS on the fit part for every grid point and keep the lowest validation RMSE.

    The grid may mix plain and biased points (:func:`recommend.is_biased`).
    ``best_plain_params`` is the plain point with the lowest validation RMSE,
    or None when the grid has no plain point.
    """
    results = []
    for index, params in enumerate(grid):
        fitted = recommend.fit_recommender(
            prepared.fit_part,
            prepared.users,
            prepared.songs,
            params,
            options.seed,
            options.checkpoint_interval,
        )
        validation_rmse = evaluate.rmse(fitted.predict(prepared.validation))
        results.append({"params": params, "validation_rmse": validation_rmse})
        logger.info(
            "explicit ALS point %d/%d %s: validation RMSE %.4f",
            index + 1,
            len(grid),
            params,
            validation_rmse,
        )

    def error(result: dict[str, Any]) -> float:
        return _finite_or(result["validation_rmse"], math.inf)

    best = min(results, key=error)
    plain = [result for result in results if not recommend.is_biased(result["params"])]
    best_plain = min(plain, key=error) if plain else None
    return {
        "results": results,
        "best_params": best["params"],
        "best_validation_rmse": best["validation_rmse"],
        "best_plain_params": None if best_plain is None else best_plain["params"],
        "best_plain_validation_rmse": None if best_plain is None else best_plain["validation_rmse"],
    }


def tune_implicit_als(
    prepared: PreparedRatings,
    grid: list[dict[str, Any]],
    options: TrainingOptions,
) -> dict[str, Any]:
    """Fit implicit ALS on the fit part for every grid point; keep the highest validation NDCG.

    Each point ranks the top ``options.top_n`` songs of every validation user,
    leaving out the user's fit-part songs, and is scored on the validation pairs.
    """
    results = []
    validation_users = prepared.validation.select("user_id").distinct().cache()
    exclude = prepared.fit_part.select("user_id", "song_id")
    for index, params in enumerate(grid):
        fitted = recommend.fit_recommender(
            prepared.fit_part,
            prepared.users,
            prepared.songs,
            {**params, "implicitPrefs": True},
            options.seed,
            options.checkpoint_interval,
        )
        lists = fitted.recommend(validation_users, options.top_n, exclude=exclude)
        ranking = evaluate.ranking_metrics(lists, prepared.validation, options.top_n)
        results.append({"params": params, "validation_ndcg_at_k": ranking["ndcg_at_k"]})
        logger.info(
            "implicit ALS point %d/%d %s: validation NDCG@%d %.4f",
            index + 1,
            len(grid),
            params,
            options.top_n,
            ranking["ndcg_at_k"],
        )
    validation_users.unpersist()
    best = max(results, key=lambda result: _finite_or(result["validation_ndcg_at_k"], -1.0))
    return {
        "results": results,
        "best_params": best["params"],
        "best_validation_ndcg_at_k": best["validation_ndcg_at_k"],
    }


def train_recommender(
    spark: SparkSession,
    options: TrainingOptions,
    run_dir: Path,
    stages: StageLog,
    report_data: report.ReportData,
    truth: oracle.GroundTruth | None,
) -> dict[str, Any]:
    """Tune, fit and evaluate ALS against its baselines; return the ``recommender`` metrics."""
    ratings_mart = data.read_mart(spark, options.schemas, data.USER_SONG_RATINGS)
    checkpoint_dir = options.checkpoint_dir / options.run_id
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    try:
        return _train_recommender(spark, ratings_mart, options, run_dir, stages, report_data, truth)
    finally:
        if checkpoint_dir.is_dir():
            shutil.rmtree(checkpoint_dir, ignore_errors=True)


def _train_recommender(
    spark: SparkSession,
    ratings_mart: DataFrame,
    options: TrainingOptions,
    run_dir: Path,
    stages: StageLog,
    report_data: report.ReportData,
    truth: oracle.GroundTruth | None,
) -> dict[str, Any]:
    with stages.stage("recommender.prepare"):
        prepared = _prepare_ratings(ratings_mart, options)
        report_data.rating_distribution = _rating_distribution(prepared.ratings)
    ratings, users, songs = prepared.ratings, prepared.users, prepared.songs
    train, test, sizes = prepared.train, prepared.test, prepared.sizes

    grid = recommend.ALS_GRIDS[options.als_grid]
    with stages.stage("recommender.tune"):
        tuning = tune_als(prepared, grid, options)
    with stages.stage("recommender.fit"):
        recommender = recommend.fit_recommender(
            train, users, songs, tuning["best_params"], options.seed, options.checkpoint_interval
        )
    plain_params = tuning["best_plain_params"]
    plain_recommender = None
    if plain_params is not None and plain_params != tuning["best_params"]:
        with stages.stage("recommender.fit_plain"):
            plain_recommender = recommend.fit_recommender(
                train, users, songs, plain_params, options.seed, options.checkpoint_interval
            )
    elif plain_params is not None:
        plain_recommender = recommender

    implicit_grid = recommend.IMPLICIT_ALS_GRIDS[options.als_grid]
    with stages.stage("recommender.implicit_tune"):
        implicit_tuning = tune_implicit_als(prepared, implicit_grid, options)
    with stages.stage("recommender.implicit_fit"):
        implicit_params = {**implicit_tuning["best_params"], "implicitPrefs": True}
        ranker = recommend.fit_recommender(
            train, users, songs, implicit_params, options.seed, options.checkpoint_interval
        )

    with stages.stage("recommender.evaluate_rmse"):
        scored = recommender.predict(test).cache()
        rmse = {"als": evaluate.rmse(scored)}
        rmse["als_plain"] = (
            None if plain_recommender is None else evaluate.rmse(plain_recommender.predict(test))
        )
        rmse.update(recommend.baseline_rmses(train, scored))
        sizes["scored_test_pairs"] = scored.count()
        scored.unpersist()
        logger.info(
            "test RMSE: ALS %.4f (plain ALS %s), global mean %.4f, user mean %.4f on %d pairs",
            rmse["als"],
            "n/a" if rmse["als_plain"] is None else f"{rmse['als_plain']:.4f}",
            rmse["global_mean"],
            rmse["user_mean"],
            sizes["scored_test_pairs"],
        )

    with stages.stage("recommender.evaluate_ranking"):
        models = {"als_implicit": ranker, "als_explicit": recommender}
        ranking = _ranking_section(models, prepared, options, truth)

    model_dir = run_dir / "models" / "recommender"
    recommender.save(model_dir / "explicit")
    if plain_recommender is not None and plain_recommender is not recommender:
        plain_recommender.save(model_dir / "explicit_plain")
    ranker.save(model_dir / "implicit")

    section: dict[str, Any] = {
        "data": sizes,
        "split": {
            "seed": options.seed,
            "validation_seed": options.seed + 1,
            "test_fraction": options.rating_test_fraction,
            "validation_fraction": options.rating_validation_fraction,
        },
        "grid_name": options.als_grid,
        "checkpoint_interval": options.checkpoint_interval,
        "rating_model": {
            "grid": grid,
            "tuning": tuning,
            "chosen_params": tuning["best_params"],
            "biased": recommend.is_biased(tuning["best_params"]),
            "model_path": str(model_dir / "explicit"),
            "plain_params": plain_params,
            "plain_model_path": (
                None
                if plain_recommender is None
                else str(
                    model_dir
                    / ("explicit" if plain_recommender is recommender else "explicit_plain")
                )
            ),
        },
        "ranking_model": {
            "grid": implicit_grid,
            "tuning": implicit_tuning,
            "chosen_params": implicit_tuning["best_params"],
            "model_path": str(model_dir / "implicit"),
        },
        "rmse": rmse,
        "ranking": ranking,
    }

    report_data.sample_recommendations = _sample_recommendations(spark, options, ranker, ratings)

    if options.write_tables:
        with stages.stage("recommender.write"):
            everyone = ranker.recommend(ratings, options.top_n, exclude=ratings)
            table = everyone.withColumn("run_id", sf.lit(options.run_id))
            section["table"] = data.write_output(
                spark, options.schemas, data.SONG_RECOMMENDATIONS, table
            )

    for frame in (train, test, ratings, users.frame, songs.frame):
        frame.unpersist()
    return section


@dataclass
class PreparedRatings:
    """Ratings with their id mappings and the seeded splits of the pairs."""

    ratings: DataFrame
    users: recommend.IdIndex
    songs: recommend.IdIndex
    train: DataFrame
    test: DataFrame
    fit_part: DataFrame
    validation: DataFrame
    sizes: dict[str, int]


def _prepare_ratings(ratings_mart: DataFrame, options: TrainingOptions) -> PreparedRatings:
    """Index the ids, split the pairs into train and test, and train into fit and validation."""
    ratings = ratings_mart.select(
        sf.col("user_id").cast("long"),
        sf.col("song_id").cast("long"),
        sf.col("rating").cast("double"),
    ).cache()
    users = recommend.IdIndex.build(ratings, recommend.USER_ID, recommend.USER_INDEX)
    songs = recommend.IdIndex.build(ratings, recommend.SONG_ID, recommend.SONG_INDEX)
    train, test = splits.split_pairs(ratings, options.rating_test_fraction, options.seed)
    train, test = train.cache(), test.cache()
    fit_part, validation = splits.split_pairs(
        train, options.rating_validation_fraction, options.seed + 1
    )
    sizes = {
        "pairs": ratings.count(),
        "users": users.size(),
        "songs": songs.size(),
        "train_pairs": train.count(),
        "test_pairs": test.count(),
        "validation_pairs": validation.count(),
    }
    if sizes["train_pairs"] == 0 or sizes["test_pairs"] == 0:
        raise ValueError(f"too few ratings to split into training and test pairs: {sizes}")
    logger.info(
        "ratings: %d pairs of %d users and %d songs; %d train, %d test",
        sizes["pairs"],
        sizes["users"],
        sizes["songs"],
        sizes["train_pairs"],
        sizes["test_pairs"],
    )
    return PreparedRatings(ratings, users, songs, train, test, fit_part, validation, sizes)


def _rating_distribution(ratings: DataFrame) -> list[tuple[float, int]]:
    rows = ratings.groupBy(sf.round("rating", 1).alias("value")).count().orderBy("value").collect()
    return [(float(row["value"]), int(row["count"])) for row in rows]


def _ranking_section(
    models: dict[str, recommend.Recommender],
    prepared: PreparedRatings,
    options: TrainingOptions,
    truth: oracle.GroundTruth | None,
) -> dict[str, Any]:
    """Score both ALS models, popularity and (with ground truth) the oracle on held-out pairs."""
    k = options.top_n
    train, test = prepared.train, prepared.test
    test_users = test.select("user_id").distinct().cache()
    exclude = train.select("user_id", "song_id")
    lists = {
        name: model.recommend(test_users, k, exclude=exclude) for name, model in models.items()
    }
    lists["popularity"] = recommend.popularity_recommendations(
        test_users,
        recommend.song_popularity(train, prepared.songs),
        prepared.users,
        prepared.songs,
        k,
        exclude,
    )
    if truth is not None:
        lists["oracle"] = truth.top_songs_frame(test_users, k, exclude)

    section: dict[str, Any] = {"k": k, "held_out": {}, "against_oracle": None}
    for name, frame in lists.items():
        frame = frame.cache()
        lists[name] = frame
        section["held_out"][name] = evaluate.ranking_metrics(frame, test, k)
        logger.info("%s on held-out pairs: %s", name, section["held_out"][name])
    if truth is not None:
        relevant = lists["oracle"].select("user_id", "song_id")
        section["against_oracle"] = {
            name: evaluate.ranking_metrics(lists[name], relevant, k)
            for name in [*models, "popularity"]
        }
    for frame in [*lists.values(), test_users]:
        frame.unpersist()
    return section


def _sample_recommendations(
    spark: SparkSession,
    options: TrainingOptions,
    recommender: recommend.Recommender,
    ratings: DataFrame,
    users: int = 3,
) -> Any:
    """Return a few users' recommendations with song names from ``dim_songs``, when built."""
    songs = data.read_optional_mart(spark, options.schemas, data.DIM_SONGS)
    sample_users = ratings.select("user_id").distinct().orderBy("user_id").limit(users)
    lists = recommender.recommend(sample_users, min(options.top_n, 5), exclude=ratings)
    columns = ["user_id", recommend.RANK, "song_id", recommend.SCORE]
    if songs is not None:
        readable = [name for name in ("song_name", "singer") if name in songs.columns]
        lists = lists.join(songs.select("song_id", *readable), on="song_id", how="left")
        columns += readable
    return lists.select(*columns).orderBy("user_id", recommend.RANK).toPandas()
