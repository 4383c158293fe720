"""Churn feature discovery and preprocessing of python_ml.features."""

from __future__ import annotations

import math

import pytest
from pyspark.ml import Pipeline
from pyspark.sql import types as st

from python_ml import features

SCHEMA = st.StructType(
    [
        st.StructField("user_id", st.LongType()),
        st.StructField("play_count_2d", st.LongType()),
        st.StructField("play_count_9d", st.LongType()),
        st.StructField("search_count_9d", st.LongType()),
        st.StructField("play_time_avg_9d", st.DoubleType()),
        st.StructField("days_since_last_play", st.IntegerType()),
        st.StructField("main_device", st.StringType()),
        st.StructField("note", st.ArrayType(st.StringType())),
    ]
)
# The mart's columns without the one of an unsupported type.
INPUT_SCHEMA = st.StructType(SCHEMA.fields[:-1])


def test_discover_features_finds_windows_by_pattern():
    spec = features.discover_features(SCHEMA, window_days=9)
    assert spec.windows == [2, 9]
    assert spec.activity_columns == [
        "play_count_2d",
        "play_count_9d",
        "search_count_9d",
        "play_time_avg_9d",
    ]
    assert spec.recency_columns == ["days_since_last_play"]
    assert spec.categorical_columns == ["main_device"]
    assert spec.ignored_columns == ["note"]
    assert spec.recency_fill == 10


def test_discover_features_needs_user_id():
    schema = st.StructType([st.StructField("play_count_1d", st.LongType())])
    with pytest.raises(ValueError, match="no user_id"):
        features.discover_features(schema, window_days=30)


def test_feature_window_days_from_dbt_vars():
    # dbt_project.yml: 2017-03-30 to 2017-04-28, both included.
    assert features.feature_window_days() == 30


def test_preprocessing_imputes_and_encodes(spark):
    rows = [
        (2**40, 1, 3, 0, None, None, " AR "),
        (5, 0, 0, 2, 180.0, 4, None),
        (6, 2, 2, 1, 200.0, 0, "ip"),
    ]
    frame = spark.createDataFrame(rows, INPUT_SCHEMA)
    spec = features.discover_features(frame.schema, window_days=9)
    model = Pipeline(stages=features.preprocessing_stages(spec, scale=False)).fit(frame)
    transformed = model.transform(frame).orderBy("user_id").collect()
    names = features.vector_feature_names(model.transform(frame))
    by_user = {
        row["user_id"]: dict(zip(names, row["features"].toArray(), strict=True))
        for row in transformed
    }
    big = by_user[2**40]
    assert big["days_since_last_play_filled"] == 10.0
    assert big["days_since_last_play_missing"] == 1.0
    assert big["play_time_avg_9d_log1p"] == 0.0
    assert big["play_count_9d_log1p"] == pytest.approx(1.3862943611)  # ln(4)
    assert by_user[5]["days_since_last_play_filled"] == 4.0
    assert by_user[5]["days_since_last_play_missing"] == 0.0
    # Categories in alphabetical order: ar, ip, unknown; the last is dropped.
    assert big["main_device_onehot_ar"] == 1.0
    assert by_user[6]["main_device_onehot_ip"] == 1.0
    assert by_user[5]["main_device_onehot_ar"] == 0.0
    assert by_user[5]["main_device_onehot_ip"] == 0.0


def test_preprocessing_scales_for_linear_model(spark):
    rows = [(i, i % 4, i % 7, i % 3, float(i), i % 5, "ar" if i % 2 else "ip") for i in range(40)]
    frame = spark.createDataFrame(rows, INPUT_SCHEMA)
    spec = features.discover_features(frame.schema, window_days=9)
    model = Pipeline(stages=features.preprocessing_stages(spec, scale=True)).fit(frame)
    scaled = [row["scaled_features"].toArray() for row in model.transform(frame).collect()]
    column_means = sum(scaled) / len(scaled)
    assert all(abs(mean) < 1e-9 for mean in column_means)


def test_labelled_users_joins_labels(spark):
    feature_rows = spark.createDataFrame(
        [(1, 3), (2, 0), (3, 1)], "user_id bigint, play_count_1d bigint"
    )
    labels = spark.createDataFrame([(1, True), (2, False)], "user_id bigint, is_churned boolean")
    joined = {
        row["user_id"]: row["label"]
        for row in features.labelled_users(feature_rows, labels).collect()
    }
    assert joined == {1: 1.0, 2: 0.0}


DERIVED_SCHEMA = st.StructType(
    [
        st.StructField("user_id", st.LongType()),
        st.StructField("play_count_2d", st.LongType()),
        st.StructField("play_count_10d", st.LongType()),
        st.StructField("download_count_10d", st.LongType()),
        st.StructField("search_count_10d", st.LongType()),
        st.StructField("active_day_count_2d", st.LongType()),
        st.StructField("active_day_count_10d", st.LongType()),
        st.StructField("play_time_avg_10d", st.DoubleType()),
        st.StructField("days_since_last_event", st.IntegerType()),
    ]
)


def test_derived_features_need_their_columns():
    spec = features.discover_features(SCHEMA, window_days=9)
    names = [name for name, _ in features.derived_expressions(spec)]
    # No days_since_last_event and no download count: no silence feature, no download mix.
    assert names == [
        "play_count_days_3_to_9_log1p",
        "play_count_2d_trend",
        "search_per_play_log",
    ]


def test_derived_features_hand_computed(spark):
    rows = [
        # 10-day window; last event 4 days ago; 6 plays, 2 of them in the last 2 days.
        (1, 2, 6, 1, 3, 1, 3, 150.0, 4),
        # NULL counts read as 0; the silence covers the whole window.
        (2, None, None, None, None, None, None, None, 10),
    ]
    frame = spark.createDataFrame(rows, DERIVED_SCHEMA)
    spec = features.discover_features(frame.schema, window_days=10)
    derived = [name for name, _ in features.derived_expressions(spec)]
    assert derived == [
        "play_count_days_3_to_10_log1p",
        "active_day_count_days_3_to_10_log1p",
        "play_count_2d_trend",
        "active_day_count_2d_trend",
        "event_rate_before_silence_log1p",
        "silence_event_deficit",
        "silence_day_deficit",
        "download_per_play_log",
        "search_per_play_log",
    ]
    model = Pipeline(stages=features.preprocessing_stages(spec, scale=False)).fit(frame)
    transformed = model.transform(frame)
    names = features.vector_feature_names(transformed)
    assert set(derived) <= set(names)
    by_user = {
        row["user_id"]: dict(zip(names, row["features"].toArray(), strict=True))
        for row in transformed.collect()
    }
    first = by_user[1]
    assert first["play_count_days_3_to_10_log1p"] == pytest.approx(math.log(1 + 4))
    assert first["active_day_count_days_3_to_10_log1p"] == pytest.approx(math.log(1 + 2))
    assert first["play_count_2d_trend"] == pytest.approx(math.log(1 + 2 / 2) - math.log(1 + 0.6))
    assert first["active_day_count_2d_trend"] == pytest.approx(
        math.log(1 + 1 / 2) - math.log(1 + 0.3)
    )
    # 10 events over the 6 days before the silence.
    rate = (6 + 1 + 3) / (10 - 4)
    assert first["event_rate_before_silence_log1p"] == pytest.approx(math.log(1 + rate))
    assert first["silence_event_deficit"] == pytest.approx(4 * math.log(1 + rate))
    assert first["silence_day_deficit"] == pytest.approx(-4 * math.log(1 - 3 / 6))
    assert first["download_per_play_log"] == pytest.approx(math.log(2) - math.log(7))
    assert first["search_per_play_log"] == pytest.approx(math.log(4) - math.log(7))

    second = by_user[2]
    assert second["play_count_days_3_to_10_log1p"] == 0.0
    assert second["play_count_2d_trend"] == 0.0
    # The days before the silence count at least one, so the rate stays finite.
    assert second["event_rate_before_silence_log1p"] == 0.0
    assert second["silence_event_deficit"] == 0.0
    assert second["silence_day_deficit"] == 0.0


def test_derived_share_of_active_days_is_capped(spark):
    # Active on all 6 days before a 4-day silence: the share 1 is capped.
    frame = spark.createDataFrame([(1, 2, 6, 0, 0, 1, 6, 150.0, 4)], DERIVED_SCHEMA)
    spec = features.discover_features(frame.schema, window_days=10)
    model = Pipeline(stages=features.preprocessing_stages(spec, scale=False)).fit(frame)
    transformed = model.transform(frame)
    names = features.vector_feature_names(transformed)
    values = dict(zip(names, transformed.first()["features"].toArray(), strict=True))
    expected = -4 * math.log(1 - features.MAX_ACTIVE_SHARE)
    assert values["silence_day_deficit"] == pytest.approx(expected)
