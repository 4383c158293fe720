"""ALS recommender of python_ml.recommend: id mapping, exact top-N, baselines, persistence."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pyspark
import pytest
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as sf

from python_ml import evaluate, recommend, splits

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

MOVIELENS = (
    Path(pyspark.__file__).parent / "data" / "mllib" / "als" / "sample_movielens_ratings.txt"
)
LARGE_IDS = [2**31 + 5, 2**40, 3, 2**63 - 1, 2**31 - 1]


@pytest.fixture(scope="module")
def movielens(spark):
    """Spark's sample ratings (user::movie::rating::timestamp) as user_id, song_id, rating."""
    parts = sf.split(sf.col("value"), "::")
    return (
        spark.read.text(str(MOVIELENS))
        .select(
            parts.getItem(0).cast("long").alias("user_id"),
            parts.getItem(1).cast("long").alias("song_id"),
            parts.getItem(2).cast("double").alias("rating"),
        )
        .cache()
    )


def test_id_index_round_trips_64_bit_ids(spark):
    ids = spark.createDataFrame([(value,) for value in LARGE_IDS * 2], "user_id bigint")
    index = recommend.IdIndex.build(ids, "user_id", "user_index")
    mapping = {row["user_id"]: row["user_index"] for row in index.frame.collect()}
    assert mapping == {value: position for position, value in enumerate(sorted(LARGE_IDS))}
    assert dict(index.frame.dtypes)["user_index"] == "int"
    decoded = index.decode(index.encode(ids).drop("user_id"))
    assert sorted(row["user_id"] for row in decoded.collect()) == sorted(LARGE_IDS * 2)


def test_id_index_save_and_load(spark, tmp_path):
    ids = spark.createDataFrame([(value,) for value in LARGE_IDS], "song_id bigint")
    index = recommend.IdIndex.build(ids, "song_id", "song_index")
    index.save(tmp_path / "index")
    loaded = recommend.IdIndex.load(spark, tmp_path / "index", "song_id", "song_index")
    assert sorted(loaded.frame.collect()) == sorted(index.frame.collect())


def _brute_force_top_n(users, songs, excluded, n):
    expected = {}
    for user, factors in enumerate(users):
        scores = songs @ factors
        candidates = [
            song
            for song in range(len(songs))
            if song not in excluded.get(user, set()) and np.isfinite(scores[song])
        ]
        candidates.sort(key=lambda song: (-scores[song], song))
        expected[user] = candidates[:n]
    return expected


def test_top_n_matches_brute_force(spark):
    rng = np.random.default_rng(17)
    users = rng.normal(size=(25, 3))
    songs = rng.normal(size=(40, 3))
    songs[[4, 9]] = np.nan
    # Tied scores: songs 30 and 31 are identical, so the lower index must come first.
    songs[31] = songs[30]
    excluded = {
        user: set(rng.choice(40, size=int(rng.integers(0, 30)), replace=False).tolist())
        for user in range(25)
    }
    excluded[3] = set(range(38))
    query = spark.createDataFrame(
        [(user, users[user].tolist()) for user in range(25)],
        "user_index int, factors array<double>",
    )
    exclude = spark.createDataFrame(
        [(user, song) for user, items in excluded.items() for song in items],
        "user_index int, song_index int",
    )
    ranked = recommend.top_n_from_factors(query, songs, exclude, n=5).collect()
    got: dict[int, list[tuple[int, int]]] = {}
    for row in ranked:
        got.setdefault(row["user_index"], []).append(
            (row["recommendation_rank"], row["song_index"])
        )
    expected = _brute_force_top_n(users, songs, excluded, 5)
    for user in range(25):
        ordered = [song for _, song in sorted(got.get(user, []))]
        assert ordered == expected[user], user
        assert [rank for rank, _ in sorted(got.get(user, []))] == list(range(1, len(ordered) + 1))
    # User 3 may only get songs 38 and 39.
    assert sorted(song for _, song in got[3]) == [38, 39]


def test_popularity_ties_go_to_smaller_song_id(spark):
    ratings = spark.createDataFrame(
        [(1, 30, 1.0), (2, 30, 1.0), (1, 20, 1.0), (3, 10, 1.0), (3, 2**40, 1.0), (4, 40, 1.0)],
        "user_id bigint, song_id bigint, rating double",
    )
    users = recommend.IdIndex.build(ratings, "user_id", "user_index")
    songs = recommend.IdIndex.build(ratings, "song_id", "song_index")
    popularity = recommend.song_popularity(ratings, songs)
    lists = recommend.popularity_recommendations(
        ratings.filter("user_id = 4"), popularity, users, songs, n=3, exclude=ratings
    ).orderBy("recommendation_rank")
    assert [row["song_id"] for row in lists.collect()] == [30, 10, 20]


def test_baseline_rmses_hand_computed(spark):
    train = spark.createDataFrame([(1, 1.0), (1, 3.0), (2, 5.0)], "user_id bigint, rating double")
    scored = spark.createDataFrame([(1, 4.0), (2, 3.0)], "user_id bigint, rating double")
    result = recommend.baseline_rmses(train, scored)
    global_mean = 3.0
    assert result["global_mean"] == pytest.approx(math.sqrt(((4 - global_mean) ** 2 + 0) / 2))
    # User means 2 and 5.
    assert result["user_mean"] == pytest.approx(math.sqrt((2**2 + 2**2) / 2))


def test_recommender_matches_plain_als_on_movielens(spark, movielens):
    train, test = splits.split_pairs(movielens, 0.2, seed=42)
    train, test = train.cache(), test.cache()
    params = {"rank": 8, "regParam": 0.1, "maxIter": 10}
    users = recommend.IdIndex.build(movielens, "user_id", "user_index")
    songs = recommend.IdIndex.build(movielens, "song_id", "song_index")
    ours = recommend.fit_recommender(train, users, songs, params, seed=42, checkpoint_interval=5)
    our_rmse = evaluate.rmse(ours.predict(test))

    plain = ALS(
        userCol="user_id",
        itemCol="song_id",
        ratingCol="rating",
        coldStartStrategy="drop",
        seed=42,
        **params,
    ).fit(train)
    plain_rmse = RegressionEvaluator(metricName="rmse", labelCol="rating").evaluate(
        plain.transform(test)
    )
    assert math.isfinite(our_rmse)
    assert our_rmse == pytest.approx(plain_rmse, rel=1e-6)


def test_recommender_save_load_and_exclusion(spark, movielens, tmp_path):
    users = recommend.IdIndex.build(movielens, "user_id", "user_index")
    songs = recommend.IdIndex.build(movielens, "song_id", "song_index")
    fitted = recommend.fit_recommender(
        movielens,
        users,
        songs,
        {"rank": 5, "regParam": 0.1, "maxIter": 5},
        seed=1,
        checkpoint_interval=2,
    )
    lists = fitted.recommend(movielens, n=4, exclude=movielens).cache()
    assert lists.count() == 30 * 4
    assert lists.join(movielens, on=["user_id", "song_id"]).count() == 0
    ranks = {
        row["user_id"]: row["ranks"]
        for row in lists.groupBy("user_id")
        .agg(sf.sort_array(sf.collect_list("recommendation_rank")).alias("ranks"))
        .collect()
    }
    assert all(value == [1, 2, 3, 4] for value in ranks.values())

    fitted.save(tmp_path / "recommender")
    loaded = recommend.Recommender.load(spark, tmp_path / "recommender")
    again = loaded.recommend(movielens, n=4, exclude=movielens)
    key = ["user_id", "recommendation_rank", "song_id"]
    assert sorted(again.select(key).collect()) == sorted(lists.select(key).collect())


def test_recommender_load_missing_path(spark, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved recommender"):
        recommend.Recommender.load(spark, tmp_path)
