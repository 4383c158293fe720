"""ALS recommender of python_ml.recommend: id mapping, exact top-N, baselines, persistence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyspark
import pytest
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as sf

from python_ml import evaluate, recommend, splits

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


def _synthetic_biased_ratings(spark, seed: int = 3):
    """Ratings made of a mean, strong user and song biases and a small noise, 40 x 30."""
    rng = np.random.default_rng(seed)
    user_bias = rng.normal(0.0, 1.0, 40)
    song_bias = rng.normal(0.0, 1.0, 30)
    rows = [
        (int(user), int(song), float(3.0 + user_bias[user] + song_bias[song] + rng.normal(0, 0.1)))
        for user in range(40)
        for song in range(30)
        if rng.random() < 0.6
    ]
    return spark.createDataFrame(rows, "user_id bigint, song_id bigint, rating double").cache()


def _numpy_baseline(rows, user_reg: float, song_reg: float, rounds: int):
    """The alternating shrunk means of RatingBaseline, computed with NumPy on (user, song, r)."""
    users = np.array([row[0] for row in rows])
    songs = np.array([row[1] for row in rows])
    ratings = np.array([row[2] for row in rows])
    mean = ratings.mean()
    user_bias = {user: 0.0 for user in set(users)}
    song_bias: dict[int, float] = {}
    for _ in range(rounds):
        residual = ratings - mean - np.array([user_bias[user] for user in users])
        song_bias = {
            song: residual[songs == song].sum() / ((songs == song).sum() + song_reg)
            for song in set(songs)
        }
        residual = ratings - mean - np.array([song_bias[song] for song in songs])
        user_bias = {
            user: residual[users == user].sum() / ((users == user).sum() + user_reg)
            for user in set(users)
        }
    return mean, user_bias, song_bias


def test_baseline_is_fitted_on_training_pairs_only(spark):
    ratings = _synthetic_biased_ratings(spark)
    train, test = splits.split_pairs(ratings, 0.3, seed=5)
    users = recommend.IdIndex.build(ratings, "user_id", "user_index")
    songs = recommend.IdIndex.build(ratings, "song_id", "song_index")
    params = {"rank": 2, "regParam": 0.1, "maxIter": 3, "userBiasReg": 2.0, "songBiasReg": 4.0}
    fitted = recommend.fit_recommender(train, users, songs, params, seed=1, checkpoint_interval=2)
    baseline = fitted.baseline
    assert baseline is not None

    train_rows = [tuple(row) for row in train.select("user_id", "song_id", "rating").collect()]
    mean, user_bias, song_bias = _numpy_baseline(train_rows, 2.0, 4.0, recommend.BASELINE_ROUNDS)
    all_mean = ratings.agg(sf.avg("rating")).first()[0]
    assert test.count() > 0
    assert baseline.global_mean == pytest.approx(mean, abs=1e-12)
    assert baseline.global_mean != pytest.approx(all_mean, abs=1e-9)
    got_users = {
        row["user_id"]: row["user_bias"] for row in users.decode(baseline.user_bias).collect()
    }
    got_songs = {
        row["song_id"]: row["song_bias"] for row in songs.decode(baseline.song_bias).collect()
    }
    assert got_users.keys() == user_bias.keys()
    assert got_songs.keys() == song_bias.keys()
    for user, value in user_bias.items():
        assert got_users[user] == pytest.approx(value, abs=1e-9), user
    for song, value in song_bias.items():
        assert got_songs[song] == pytest.approx(value, abs=1e-9), song


def test_biased_prediction_adds_baseline_to_residual_als(spark):
    ratings = _synthetic_biased_ratings(spark, seed=4)
    train, test = splits.split_pairs(ratings, 0.25, seed=9)
    train, test = train.cache(), test.cache()
    users = recommend.IdIndex.build(ratings, "user_id", "user_index")
    songs = recommend.IdIndex.build(ratings, "song_id", "song_index")
    params = {"rank": 3, "regParam": 0.1, "maxIter": 5, "userBiasReg": 1.0, "songBiasReg": 1.0}
    biased = recommend.fit_recommender(train, users, songs, params, seed=2, checkpoint_interval=2)
    predictions = biased.predict(test).cache()
    biased_rmse = evaluate.rmse(predictions)

    # The same ALS model without its bias terms predicts only the residual.
    without_terms = recommend.Recommender(biased.model, users, songs, baseline=None)
    residual_only_rmse = evaluate.rmse(without_terms.predict(test))
    mean = train.agg(sf.avg("rating")).first()[0]
    user_mean_rmse = recommend.baseline_rmses(train, predictions)["user_mean"]
    assert biased_rmse < 0.3
    assert biased_rmse < 0.5 * user_mean_rmse
    # Ratings centre on 3, so predicting the residual alone misses by about the mean.
    assert residual_only_rmse > mean - 1.0 > 5 * biased_rmse

    # prediction = mean + user bias + song bias + ALS residual, pair by pair,
    # clipped to the training ratings' range.
    baseline = biased.baseline
    low, high = train.agg(sf.min("rating"), sf.max("rating")).first()
    assert (baseline.lowest, baseline.highest) == (low, high)
    manual = baseline.add(songs.encode(users.encode(test)), "baseline")
    manual = biased.model.transform(manual).select(
        "user_id", "song_id", (sf.col("prediction") + sf.col("baseline")).alias("manual")
    )
    joined = predictions.join(manual, on=["user_id", "song_id"]).collect()
    assert len(joined) == predictions.count() > 0
    for row in joined:
        assert row["prediction"] == pytest.approx(min(max(row["manual"], low), high), abs=1e-9)


def test_biased_prediction_is_clipped_to_training_range(spark):
    # User 0 rates every song 5 and song 0 gets 5 from everyone, the rest 1, so
    # mean + user bias + song bias for the held-out pair (0, 0) is far above 5.
    rows = [
        (user, song, 5.0 if user == 0 or song == 0 else 1.0)
        for user in range(12)
        for song in range(10)
    ]
    ratings = spark.createDataFrame(rows, "user_id bigint, song_id bigint, rating double")
    train = ratings.filter("NOT (user_id = 0 AND song_id = 0)")
    held_out = ratings.filter("user_id = 0 AND song_id = 0")
    users = recommend.IdIndex.build(ratings, "user_id", "user_index")
    songs = recommend.IdIndex.build(ratings, "song_id", "song_index")
    params = {"rank": 2, "regParam": 0.1, "maxIter": 5, "userBiasReg": 0.0, "songBiasReg": 0.0}
    fitted = recommend.fit_recommender(train, users, songs, params, seed=1, checkpoint_interval=2)
    raw = fitted.baseline.add(songs.encode(users.encode(held_out)), "baseline")
    raw = fitted.model.transform(raw).select(sf.col("prediction") + sf.col("baseline"))
    assert raw.first()[0] > 5.5
    assert fitted.predict(held_out).first()["prediction"] == 5.0
    lowest = fitted.predict(train).agg(sf.min("prediction")).first()[0]
    assert lowest >= 1.0


def test_biased_top_n_scores_are_predicted_ratings(spark, tmp_path):
    ratings = _synthetic_biased_ratings(spark, seed=6)
    users = recommend.IdIndex.build(ratings, "user_id", "user_index")
    songs = recommend.IdIndex.build(ratings, "song_id", "song_index")
    train, _ = splits.split_pairs(ratings, 0.3, seed=2)
    params = {"rank": 3, "regParam": 0.1, "maxIter": 4, "userBiasReg": 1.0, "songBiasReg": 2.0}
    biased = recommend.fit_recommender(train, users, songs, params, seed=3, checkpoint_interval=2)
    lists = biased.recommend(ratings.select("user_id"), n=3, exclude=train).cache()
    assert lists.join(train, on=["user_id", "song_id"]).count() == 0
    predicted = biased.predict(lists.select("user_id", "song_id"))
    compared = lists.join(predicted, on=["user_id", "song_id"]).collect()
    assert len(compared) == lists.count() == 40 * 3
    for row in compared:
        assert row["score"] == pytest.approx(row["prediction"], abs=1e-4)
    # Each list contains the user's highest predicted ratings among unseen songs.
    candidates = songs.frame.select("song_id").crossJoin(ratings.select("user_id").distinct())
    candidates = candidates.join(train, on=["user_id", "song_id"], how="left_anti")
    every = biased.predict(candidates).toPandas()
    for user, group in lists.toPandas().groupby("user_id"):
        best = every[every.user_id == user].nlargest(3, "prediction")
        assert sorted(group.song_id) == sorted(best.song_id), user

    biased.save(tmp_path / "biased")
    loaded = recommend.Recommender.load(spark, tmp_path / "biased")
    assert loaded.baseline is not None
    assert loaded.baseline.global_mean == biased.baseline.global_mean
    again = loaded.recommend(ratings.select("user_id"), n=3, exclude=train)
    key = ["user_id", "recommendation_rank", "song_id"]
    assert sorted(again.select(key).collect()) == sorted(lists.select(key).collect())


def test_bias_terms_refused_for_implicit_als(spark, movielens):
    users = recommend.IdIndex.build(movielens, "user_id", "user_index")
    songs = recommend.IdIndex.build(movielens, "song_id", "song_index")
    params = {"rank": 2, "maxIter": 2, "implicitPrefs": True, "userBiasReg": 1.0}
    with pytest.raises(ValueError, match="explicit ALS only"):
        recommend.fit_recommender(movielens, users, songs, params, seed=1, checkpoint_interval=2)


def test_grids_keep_a_plain_explicit_point():
    for name, grid in recommend.ALS_GRIDS.items():
        assert any(not recommend.is_biased(point) for point in grid), name
        assert any(recommend.is_biased(point) for point in grid), name
