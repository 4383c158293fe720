"""Ground truth seen from training (python_ml.oracle), on a small generated dataset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from python_ml import evaluate, training
from python_ml.generator import generate_dataset
from python_ml.generator.truth import oracle_top_songs, read_users
from python_ml.oracle import OBSERVED_COLUMN, GroundTruth
from python_ml.report import ReportData


@pytest.fixture(scope="module")
def truth_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle-truth")
    generate_dataset(root / "raw", users=60, seed=5, truth_dir=root / "truth")
    return root / "truth"


def test_open_needs_a_manifest(tmp_path, truth_dir):
    assert GroundTruth.open(None) is None
    assert GroundTruth.open(tmp_path) is None
    assert GroundTruth.open(truth_dir).path == truth_dir


def test_churn_probabilities_match_users_file(truth_dir):
    users = read_users(truth_dir)
    known = users.dropna(subset=["churn_probability"])
    wanted = [*known["user_id"].head(5).tolist(), 12345]
    result = GroundTruth(truth_dir).churn_probabilities(wanted)
    assert sorted(result["user_id"]) == sorted(known["user_id"].head(5))
    expected = known.set_index("user_id").loc[result["user_id"], "churn_probability"]
    np.testing.assert_allclose(result["churn_probability"], expected.to_numpy())
    observed = known.set_index("user_id").loc[result["user_id"], OBSERVED_COLUMN]
    np.testing.assert_allclose(result[OBSERVED_COLUMN], observed.to_numpy())


def test_older_truth_without_observed_column(tmp_path, truth_dir):
    shutil.copytree(truth_dir, tmp_path / "truth")
    users = read_users(truth_dir).drop(columns=[OBSERVED_COLUMN])
    users.to_parquet(tmp_path / "truth" / "users.parquet")
    result = GroundTruth(tmp_path / "truth").churn_probabilities(users["user_id"].tolist())
    assert list(result.columns) == ["user_id", "churn_probability"]


def test_churn_oracle_scores_both_probabilities(spark, truth_dir):
    users = read_users(truth_dir)
    population = users[users["in_population"]]
    test = spark.createDataFrame(
        [(int(row.user_id), float(row.is_churned)) for row in population.itertuples()],
        "user_id bigint, label double",
    )
    data = ReportData()
    result = training._churn_oracle(GroundTruth(truth_dir), test, data)
    labels = population["is_churned"].to_numpy(dtype=float)
    assert result["test_users"] == len(population)
    assert result["roc_auc"] == pytest.approx(
        evaluate.roc_auc(labels, population["churn_probability"].to_numpy())
    )
    assert result["observed"]["roc_auc"] == pytest.approx(
        evaluate.roc_auc(labels, population[OBSERVED_COLUMN].to_numpy())
    )
    assert result["observed"]["roc_auc"] != pytest.approx(result["roc_auc"])
    assert data.observed_oracle_churn is not None


def test_top_songs_frame_matches_generator(spark, truth_dir):
    users = read_users(truth_dir)["user_id"].head(4).tolist()
    songs = oracle_top_songs(truth_dir, users[:1], 3)[users[0]]
    # The first user's best song is excluded, so the next ones move up.
    excluded = {users[0]: [songs[0]]}
    expected = oracle_top_songs(truth_dir, users, 3, exclude=excluded)
    user_frame = spark.createDataFrame([(user,) for user in [*users, 999]], "user_id bigint")
    exclude = spark.createDataFrame([(users[0], songs[0])], "user_id bigint, song_id bigint")
    frame = GroundTruth(truth_dir).top_songs_frame(user_frame, 3, exclude)
    got: dict[int, list[tuple[int, int]]] = {}
    for row in frame.collect():
        got.setdefault(row["user_id"], []).append((row["recommendation_rank"], row["song_id"]))
    assert set(got) == set(users)
    for user in users:
        assert [song for _, song in sorted(got[user])] == expected[user], user
    assert songs[0] not in [song for _, song in got[users[0]]]
