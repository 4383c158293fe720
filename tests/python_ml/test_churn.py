"""Contract of the three churn classifiers in python_ml.churn, on a tiny inline dataset."""

from __future__ import annotations

import numpy as np
import pytest

from python_ml import churn, evaluate
from python_ml.features import discover_features

COLUMNS = (
    "user_id bigint, play_count_7d bigint, play_count_30d bigint, download_count_30d bigint, "
    "days_since_last_play int, main_device string, label double"
)


@pytest.fixture(scope="module")
def labelled(spark):
    """120 users whose churn follows their recent activity, ids above 2^31."""
    rng = np.random.default_rng(23)
    rows = []
    for i in range(120):
        activity = rng.gamma(2.0, 3.0)
        recent = int(rng.poisson(activity))
        total = recent + int(rng.poisson(activity * 3))
        churned = float(rng.random() < 1 / (1 + np.exp(recent - 3)))
        last = None if total == 0 else int(rng.integers(0, 7 if recent else 30))
        device = [None, "ar", "ip"][i % 3]
        downloads = int(rng.poisson(activity / 4))
        rows.append((2**31 + 1000 * i, recent, total, downloads, last, device, churned))
    return spark.createDataFrame(rows, COLUMNS).cache()


@pytest.mark.parametrize("name", sorted(churn.MODELS))
def test_churn_model_contract(name, labelled, tmp_path):
    model = churn.get_model(name)
    spec = discover_features(labelled.drop("label").schema, window_days=30)
    params = model.param_grid("quick")[0]
    fitted = model.fit(labelled, spec, params, seed=23)

    scored = churn.score(fitted, labelled).toPandas().sort_values("user_id")
    probabilities = scored[churn.PROBABILITY_COLUMN].to_numpy()
    assert len(scored) == 120
    assert ((probabilities >= 0.0) & (probabilities <= 1.0)).all()
    # The signal is strong: any working classifier ranks well in-sample.
    assert evaluate.roc_auc(scored["label"].to_numpy(), probabilities) > 0.75

    churn.save_model(fitted, tmp_path / name)
    reloaded = churn.load_model(tmp_path / name)
    unlabelled = labelled.drop("label")
    rescored = churn.score(reloaded, unlabelled).toPandas().sort_values("user_id")
    assert list(rescored.columns) == ["user_id", churn.PROBABILITY_COLUMN]
    assert rescored["user_id"].tolist() == scored["user_id"].tolist()
    np.testing.assert_allclose(rescored[churn.PROBABILITY_COLUMN].to_numpy(), probabilities)

    weights = model.feature_weights(fitted, labelled)
    assert "days_since_last_play_missing" in weights
    assert "play_count_7d_log1p" in weights
    assert all(np.isfinite(list(weights.values())))
    if model.scale_features:
        # Churn falls with recent plays, so the standardised coefficient is negative.
        assert weights["play_count_7d_log1p"] < 0
    else:
        assert sum(weights.values()) == pytest.approx(1.0)


def test_churn_models_use_seed(labelled):
    model = churn.get_model("random_forest")
    spec = discover_features(labelled.drop("label").schema, window_days=30)
    params = model.param_grid("quick")[0]
    first = churn.score(model.fit(labelled, spec, params, seed=1), labelled).toPandas()
    again = churn.score(model.fit(labelled, spec, params, seed=1), labelled).toPandas()
    other = churn.score(model.fit(labelled, spec, params, seed=2), labelled).toPandas()
    key = churn.PROBABILITY_COLUMN
    np.testing.assert_allclose(first.sort_values("user_id")[key], again.sort_values("user_id")[key])
    assert not np.allclose(first.sort_values("user_id")[key], other.sort_values("user_id")[key])


def test_unknown_model_and_grid_are_rejected():
    with pytest.raises(ValueError, match="unknown churn model"):
        churn.get_model("svm")
    with pytest.raises(ValueError, match="unknown grid"):
        churn.get_model("gbt").param_grid("huge")


def test_load_model_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved churn model"):
        churn.load_model(tmp_path / "absent")
