"""Seeded splits of python_ml.splits: users by label, folds, and (user, song) pairs."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as sf

from python_ml import splits

BIG_ID = 2**31 + 12_345


@pytest.fixture()
def users(spark):
    # 300 users, 90 churned; ids straddle 2^31.
    rows = [(BIG_ID + 7 * i if i % 2 else i + 1, 1.0 if i % 10 < 3 else 0.0) for i in range(300)]
    return spark.createDataFrame(rows, "user_id bigint, label double")


def _ids(frame) -> set[int]:
    return {row["user_id"] for row in frame.select("user_id").collect()}


def test_stratified_split_keeps_users_disjoint(users):
    train, test = splits.stratified_user_split(users, 0.2, seed=7)
    train_ids, test_ids = _ids(train), _ids(test)
    assert not train_ids & test_ids
    assert train_ids | test_ids == _ids(users)


def test_stratified_split_keeps_label_balance(users):
    train, test = splits.stratified_user_split(users, 0.2, seed=7)
    assert test.count() == 60
    assert test.filter(sf.col("label") == 1.0).count() == 18
    assert train.filter(sf.col("label") == 1.0).count() == 72


def test_stratified_split_is_seeded(users):
    first = _ids(splits.stratified_user_split(users, 0.2, seed=7)[1])
    again = _ids(splits.stratified_user_split(users.repartition(5), 0.2, seed=7)[1])
    other = _ids(splits.stratified_user_split(users, 0.2, seed=8)[1])
    assert first == again
    assert first != other


def test_stratified_split_gives_tiny_classes_both_sides(spark):
    frame = spark.createDataFrame(
        [(1, 1.0), (2, 1.0), (3, 0.0), (4, 0.0), (5, 0.0)], "user_id bigint, label double"
    )
    train, test = splits.stratified_user_split(frame, 0.1, seed=1)
    assert sorted(row["label"] for row in test.collect()) == [0.0, 1.0]
    assert sorted(row["label"] for row in train.collect()) == [0.0, 0.0, 1.0]


def test_stratified_split_rejects_bad_fraction(users):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        splits.stratified_user_split(users, 1.0, seed=1)


def test_folds_are_stratified(users):
    folded = splits.assign_folds(users, 3, seed=7)
    counts = {
        (row["fold"], row["label"]): row["count"]
        for row in folded.groupBy("fold", "label").count().collect()
    }
    assert sorted({fold for fold, _ in counts}) == [0, 1, 2]
    assert all(counts[(fold, 1.0)] == 30 for fold in range(3))
    assert all(counts[(fold, 0.0)] == 70 for fold in range(3))


def test_folds_need_two(users):
    with pytest.raises(ValueError, match="at least 2 folds"):
        splits.assign_folds(users, 1, seed=7)


def test_pair_split_is_seeded_and_partition_free(spark):
    pairs = spark.range(2000).select(
        (sf.col("id") % 97 + sf.lit(BIG_ID)).alias("user_id"), (sf.col("id") * 13).alias("song_id")
    )
    train, test = splits.split_pairs(pairs, 0.25, seed=3)
    again = splits.split_pairs(pairs.repartition(7), 0.25, seed=3)[1]
    key = ["user_id", "song_id"]
    assert train.count() + test.count() == 2000
    assert train.join(test, on=key).count() == 0
    assert sorted(test.collect()) == sorted(again.collect())
    # About a quarter: 500 expected, binomial standard deviation about 19.
    assert 400 < test.count() < 600
