"""Ground truth seen from training (python_ml.oracle), on a small generated dataset."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from python_ml.generator import generate_dataset
from python_ml.generator.truth import oracle_top_songs, read_users
from python_ml.oracle import GroundTruth

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


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
