"""Churn classifiers: logistic regression, random forest and gradient-boosted trees.

Each model is a :class:`ChurnModel`, a small shared interface in the manner of
implicit's ``RecommenderBase``. A model builds one ``pyspark.ml.Pipeline`` from
the shared preprocessing (:mod:`python_ml.features`) and its classifier, and
names its hyperparameter grids. It also explains a fitted pipeline, with
feature importances for the trees and standardised coefficients for the
linear model. Fitted pipelines
are plain ``PipelineModel`` objects, saved and reloaded with Spark ML
persistence by :func:`save_model` and :func:`load_model`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    GBTClassifier,
    LogisticRegression,
    RandomForestClassifier,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from python_ml.features import (
    FEATURES_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    SCALED_FEATURES_COLUMN,
    FeatureSpec,
    preprocessing_stages,
    vector_feature_names,
)

logger = logging.getLogger(__name__)

PROBABILITY_COLUMN = "churn_probability"
GRID_NAMES = ("quick", "standard")

Params = dict[str, Any]


class ChurnModel(ABC):
    """A churn classifier behind the interface that training and tests share.

    Attributes
    ----------
    name : str
        Identifier used in reports, model folders and ``churn_predictions``.
    scale_features : bool
        Whether the pipeline standardises the feature vector first.
    grids : dict of str to list of dict
        Hyperparameter grids by name: ``quick`` (one point, for smoke runs and
        tests) and ``standard`` (the default, sized so that a run on the
        generator's default scale stays near half an hour).
    """

    name: ClassVar[str]
    scale_features: ClassVar[bool] = False
    grids: ClassVar[dict[str, list[Params]]]

    @abstractmethod
    def make_classifier(self, params: Params, seed: int) -> Any:
        """Return the pyspark classifier for one point of the grid."""

    @abstractmethod
    def explain(self, model: PipelineModel, feature_names: list[str]) -> dict[str, float]:
        """Return one weight per feature: importances or standardised coefficients."""

    def param_grid(self, grid: str) -> list[Params]:
        """Return the named grid as a list of parameter dictionaries."""
        if grid not in self.grids:
            raise ValueError(f"unknown grid {grid!r} for {self.name}; choose from {GRID_NAMES}")
        return [dict(point) for point in self.grids[grid]]

    @property
    def features_column(self) -> str:
        """Vector column that the classifier reads."""
        return SCALED_FEATURES_COLUMN if self.scale_features else FEATURES_COLUMN

    def build_pipeline(self, spec: FeatureSpec, params: Params, seed: int) -> Pipeline:
        """Return the unfitted pipeline: preprocessing, then the classifier."""
        classifier = self.make_classifier(params, seed)
        classifier.setFeaturesCol(self.features_column).setLabelCol(LABEL_COLUMN)
        return Pipeline(stages=[*preprocessing_stages(spec, self.scale_features), classifier])

    def fit(self, frame: DataFrame, spec: FeatureSpec, params: Params, seed: int) -> PipelineModel:
        """Fit the pipeline on labelled users (feature columns plus ``label``)."""
        logger.debug("fitting %s with %s", self.name, params)
        return self.build_pipeline(spec, params, seed).fit(frame)

    def feature_weights(self, model: PipelineModel, frame: DataFrame) -> dict[str, float]:
        """Return :meth:`explain` keyed by the assembled feature names.

        ``frame`` is any frame the model can transform; only its schema
        metadata is read, to name the vector slots.
        """
        transformed = PipelineModel(stages=model.stages[:-1]).transform(frame.limit(1))
        names = vector_feature_names(transformed, FEATURES_COLUMN)
        return self.explain(model, names)


class LogisticRegressionChurn(ChurnModel):
    """L2/elastic-net logistic regression on standardised features."""

    name = "logistic_regression"
    scale_features = True
    grids: ClassVar[dict[str, list[Params]]] = {
        "quick": [{"regParam": 0.01, "elasticNetParam": 0.0, "maxIter": 25}],
        "standard": [{"regParam": 0.001, "elasticNetParam": 0.0, "maxIter": 50}],
    }

    def make_classifier(self, params: Params, seed: int) -> LogisticRegression:
        settings = {"maxIter": 100, **params}
        return LogisticRegression(family="binomial", **settings)

    def explain(self, model: PipelineModel, feature_names: list[str]) -> dict[str, float]:
        """Return the coefficients, which are per standard deviation of each input."""
        coefficients = model.stages[-1].coefficients.toArray()
        return dict(zip(feature_names, map(float, coefficients), strict=True))


class RandomForestChurn(ChurnModel):
    """Random forest of classification trees."""

    name = "random_forest"
    grids: ClassVar[dict[str, list[Params]]] = {
        "quick": [{"numTrees": 20, "maxDepth": 5}],
        "standard": [
            {"numTrees": 40, "maxDepth": 10, "minInstancesPerNode": 10, "subsamplingRate": 0.8}
        ],
    }

    def make_classifier(self, params: Params, seed: int) -> RandomForestClassifier:
        return RandomForestClassifier(seed=seed, featureSubsetStrategy="sqrt", **params)

    def explain(self, model: PipelineModel, feature_names: list[str]) -> dict[str, float]:
        """Return the impurity-based importances, which sum to one."""
        importances = model.stages[-1].featureImportances.toArray()
        return dict(zip(feature_names, map(float, importances), strict=True))


class GBTChurn(ChurnModel):
    """Gradient-boosted classification trees (logistic loss)."""

    name = "gbt"
    grids: ClassVar[dict[str, list[Params]]] = {
        "quick": [{"maxIter": 10, "maxDepth": 3, "stepSize": 0.1}],
        "standard": [{"maxIter": 60, "maxDepth": 3, "stepSize": 0.1, "subsamplingRate": 0.8}],
    }

    def make_classifier(self, params: Params, seed: int) -> GBTClassifier:
        return GBTClassifier(seed=seed, lossType="logistic", **params)

    def explain(self, model: PipelineModel, feature_names: list[str]) -> dict[str, float]:
        """Return the importances averaged over the trees, which sum to one."""
        importances = model.stages[-1].featureImportances.toArray()
        return dict(zip(feature_names, map(float, importances), strict=True))


MODELS: dict[str, type[ChurnModel]] = {
    model.name: model for model in (LogisticRegressionChurn, RandomForestChurn, GBTChurn)
}


def get_model(name: str) -> ChurnModel:
    """Return a new churn model by name: ``logistic_regression``, ``random_forest`` or ``gbt``."""
    if name not in MODELS:
        raise ValueError(f"unknown churn model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]()


def score(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """Score users with a fitted churn pipeline.

    Parameters
    ----------
    model : PipelineModel
        A pipeline fitted by :meth:`ChurnModel.fit` or reloaded by :func:`load_model`.
    frame : DataFrame
        Rows of ``churn_features`` (a ``label`` column, when present, is kept).

    Returns
    -------
    DataFrame
        ``user_id``, ``churn_probability`` (double in [0, 1]) and ``label`` if
        ``frame`` has one.
    """
    keep = [ID_COLUMN] + ([LABEL_COLUMN] if LABEL_COLUMN in frame.columns else [])
    probability = vector_to_array(sf.col("probability")).getItem(1).alias(PROBABILITY_COLUMN)
    return model.transform(frame).select(*keep, probability)


def save_model(model: PipelineModel, path: Path) -> None:
    """Save a fitted pipeline with Spark ML persistence, replacing any earlier copy."""
    model.write().overwrite().save(str(path))
    logger.info("saved churn model to %s", path)


def load_model(path: Path) -> PipelineModel:
    """Load a pipeline saved by :func:`save_model`.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"no saved churn model at {path}")
    return PipelineModel.load(str(path))
