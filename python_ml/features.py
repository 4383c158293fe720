"""Churn feature discovery and the preprocessing stages shared by every churn model.

The columns of ``churn_features`` follow naming patterns rather than a fixed
list, because the feature windows are a dbt var: ``<type>_count_<N>d`` and the
other ``*_<N>d`` activity measures for every window N, ``days_since_last_*``
recency columns, and the categorical ``main_device``. Preprocessing is one
``SQLTransformer`` plus Spark ML stages, so a fitted pipeline is saved and
reloaded with Spark ML persistence alone.

Imputation and transforms
-------------------------
- Recency ``days_since_last_<type>`` is NULL when the user had no such event in
  the feature window. It is filled with the feature window length plus one
  (31 for the default 30-day window), a value beyond any observed one that
  reads as "not seen in the window", and a 0/1 indicator
  ``days_since_last_<type>_missing`` is added beside it.
- Every other numeric column is an activity measure (counts, seconds). NULL
  becomes 0 and the value enters as ``ln(1 + x)``, which tames the heavy tail
  for the linear model and does not change the trees' splits.
- ``main_device`` is lower-cased, NULL becomes ``unknown``, and the value is
  one-hot encoded.

Derived features
----------------
Built from the same row's columns only, by :func:`derived_expressions`, when
the columns they need exist (``L`` is the longest window, ``d`` the filled
``days_since_last_event``, ``x_N`` a measure over the last N days, NULL as 0):

- segments: for each additive measure and consecutive windows M < N,
  ``ln(1 + max(x_N - x_M, 0))``, the activity of days M + 1 to N alone;
- trends: for plays and active days and each window N < L,
  ``ln(1 + x_N / N) - ln(1 + x_L / L)``, the recent daily rate against the
  whole window's;
- silence: with ``r`` the events (plays, downloads, searches) per day of the
  longest window before the current silence, ``r = events_L / max(L - d, 1)``,
  the features ``ln(1 + r)``, ``d ln(1 + r)`` (how unlikely d silent days are
  for a user that active) and ``-d ln(1 - p)`` with ``p`` the share of active
  days before the silence, capped at 0.99;
- mix: ``ln(1 + downloads_L) - ln(1 + plays_L)`` and the same for searches.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from datetime import date

from pyspark.ml import Transformer
from pyspark.ml.feature import (
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as st

from python_ml import config

logger = logging.getLogger(__name__)

ID_COLUMN = "user_id"
LABEL_COLUMN = "label"
FEATURES_COLUMN = "features"
SCALED_FEATURES_COLUMN = "scaled_features"

WINDOWED_COLUMN = re.compile(r"^(?P<measure>[a-z_]+)_(?P<days>\d+)d$")
RECENCY_COLUMN = re.compile(r"^days_since_last_[a-z_]+$")
CATEGORICAL_COLUMNS = ("main_device",)
UNKNOWN_CATEGORY = "unknown"

NUMERIC_TYPES = (
    st.ByteType,
    st.ShortType,
    st.IntegerType,
    st.LongType,
    st.FloatType,
    st.DoubleType,
)

# Windowed measures that add up over days, so a longer window minus a shorter
# one is the activity of the days in between.
ADDITIVE_MEASURES = (
    "play_count",
    "download_count",
    "search_count",
    "play_time_total",
    "engaged_play_count",
    "active_day_count",
)
TREND_MEASURES = ("play_count", "active_day_count")
EVENT_MEASURES = ("play_count", "download_count", "search_count")
SILENCE_COLUMN = "days_since_last_event"
ACTIVE_DAYS_MEASURE = "active_day_count"
# Cap on the share of active days, so that ln(1 - p) stays finite.
MAX_ACTIVE_SHARE = 0.99

# Used when dbt_project.yml cannot be read: the contract's default window,
# 2017-03-30 to 2017-04-28.
DEFAULT_FEATURE_WINDOW_DAYS = 30


@dataclass(frozen=True)
class FeatureSpec:
    """The churn feature columns found in a ``churn_features`` schema.

    Attributes
    ----------
    windows : list of int
        Feature windows in days, found from the ``*_<N>d`` column names.
    activity_columns : list of str
        Numeric activity measures, windowed or not, entered as ``ln(1 + x)``.
    recency_columns : list of str
        ``days_since_last_*`` columns, imputed with ``recency_fill``.
    categorical_columns : list of str
        String columns that are one-hot encoded.
    recency_fill : int
        Value that replaces a NULL recency: the feature window length plus one.
    ignored_columns : list of str
        Columns of other types that no model uses.
    """

    windows: list[int]
    activity_columns: list[str]
    recency_columns: list[str]
    categorical_columns: list[str]
    recency_fill: int
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def input_columns(self) -> list[str]:
        """Columns of ``churn_features`` that the preprocessing reads."""
        return [*self.activity_columns, *self.recency_columns, *self.categorical_columns]


def feature_window_days() -> int:
    """Return the feature window length in days from the dbt vars.

    The window runs from ``feature_window_start`` to ``snapshot_date``, both
    included. When the vars cannot be read, the contract's default (30) is used.
    """
    try:
        start = date.fromisoformat(str(config.dbt_var("feature_window_start")))
        end = date.fromisoformat(str(config.dbt_var("snapshot_date")))
    except (config.ConfigError, ValueError, OSError) as error:
        logger.warning(
            "feature window not read from dbt_project.yml (%s); using %d days",
            error,
            DEFAULT_FEATURE_WINDOW_DAYS,
        )
        return DEFAULT_FEATURE_WINDOW_DAYS
    return (end - start).days + 1


def discover_features(schema: st.StructType, window_days: int | None = None) -> FeatureSpec:
    """Sort the columns of a ``churn_features`` schema into feature groups.

    Parameters
    ----------
    schema : StructType
        Schema of the ``churn_features`` mart.
    window_days : int, optional
        Feature window length in days; read from the dbt vars by default.

    Returns
    -------
    FeatureSpec
        The groups, each in the order of the schema.

    Raises
    ------
    ValueError
        When the schema has no ``user_id`` or no numeric feature.
    """
    names = [column.name for column in schema.fields]
    if ID_COLUMN not in names:
        raise ValueError(f"churn_features has no {ID_COLUMN} column; columns: {names}")
    activity, recency, categorical, ignored = [], [], [], []
    windows: set[int] = set()
    for column in schema.fields:
        name = column.name
        if name == ID_COLUMN:
            continue
        if name in CATEGORICAL_COLUMNS and isinstance(column.dataType, st.StringType):
            categorical.append(name)
        elif isinstance(column.dataType, (*NUMERIC_TYPES, st.BooleanType)):
            if RECENCY_COLUMN.match(name):
                recency.append(name)
            else:
                activity.append(name)
                match = WINDOWED_COLUMN.match(name)
                if match:
                    windows.add(int(match.group("days")))
        else:
            ignored.append(name)
    if not activity and not recency:
        raise ValueError(f"churn_features has no numeric feature column; columns: {names}")
    if ignored:
        logger.info("churn features ignore non-numeric columns: %s", ", ".join(ignored))
    length = window_days if window_days is not None else feature_window_days()
    return FeatureSpec(
        windows=sorted(windows),
        activity_columns=activity,
        recency_columns=recency,
        categorical_columns=categorical,
        recency_fill=length + 1,
        ignored_columns=ignored,
    )


def _value(name: str) -> str:
    return f"coalesce(cast(`{name}` as double), 0D)"


def derived_expressions(spec: FeatureSpec) -> list[tuple[str, str]]:
    """Return the derived features as (name, Spark SQL expression) pairs.

    Parameters
    ----------
    spec : FeatureSpec
        The discovered feature columns; a derived feature is left out when a
        column it needs is missing.

    Returns
    -------
    list of tuple of str
        Segments, trends, silence and mix features, in that order (see the
        module notes for their definitions).
    """
    present = set(spec.activity_columns) | set(spec.recency_columns)
    windows = spec.windows
    derived: list[tuple[str, str]] = []
    for measure in ADDITIVE_MEASURES:
        have = [days for days in windows if f"{measure}_{days}d" in present]
        for shorter, longer in itertools.pairwise(have):
            difference = f"{_value(f'{measure}_{longer}d')} - {_value(f'{measure}_{shorter}d')}"
            derived.append(
                (
                    f"{measure}_days_{shorter + 1}_to_{longer}_log1p",
                    f"ln(1 + greatest({difference}, 0D))",
                )
            )
    if not windows:
        return derived
    longest = windows[-1]
    for measure in TREND_MEASURES:
        whole = f"{measure}_{longest}d"
        if whole not in present:
            continue
        for days in windows[:-1]:
            if f"{measure}_{days}d" in present:
                recent = f"ln(1 + {_value(f'{measure}_{days}d')} / {days}D)"
                derived.append(
                    (f"{measure}_{days}d_trend", f"{recent} - ln(1 + {_value(whole)} / {longest}D)")
                )
    events = [f"{measure}_{longest}d" for measure in EVENT_MEASURES]
    events = [name for name in events if name in present]
    if SILENCE_COLUMN in present and events:
        silence = f"coalesce(cast(`{SILENCE_COLUMN}` as double), {float(spec.recency_fill)}D)"
        before = f"greatest({longest}D - {silence}, 1D)"
        rate = f"(({' + '.join(_value(name) for name in events)}) / {before})"
        derived.append(("event_rate_before_silence_log1p", f"ln(1 + {rate})"))
        derived.append(("silence_event_deficit", f"{silence} * ln(1 + {rate})"))
        active = f"{ACTIVE_DAYS_MEASURE}_{longest}d"
        if active in present:
            share = f"least({_value(active)} / {before}, {MAX_ACTIVE_SHARE}D)"
            derived.append(("silence_day_deficit", f"-{silence} * ln(1 - {share})"))
    plays = f"play_count_{longest}d"
    if plays in present:
        for measure, name in (("download_count", "download"), ("search_count", "search")):
            column = f"{measure}_{longest}d"
            if column in present:
                derived.append(
                    (
                        f"{name}_per_play_log",
                        f"ln(1 + {_value(column)}) - ln(1 + {_value(plays)})",
                    )
                )
    return derived


def imputation_statement(spec: FeatureSpec) -> str:
    """Return the ``SQLTransformer`` statement that fills, transforms, flags and derives."""
    expressions = []
    for name in spec.activity_columns:
        expressions.append(
            f"ln(1 + greatest(coalesce(cast(`{name}` as double), 0D), 0D)) AS `{name}_log1p`"
        )
    for name in spec.recency_columns:
        expressions.append(
            f"coalesce(cast(`{name}` as double), {float(spec.recency_fill)}D) AS `{name}_filled`"
        )
        expressions.append(f"cast(`{name}` IS NULL AS double) AS `{name}_missing`")
    for name in spec.categorical_columns:
        expressions.append(
            f"coalesce(nullif(lower(trim(`{name}`)), ''), '{UNKNOWN_CATEGORY}') AS `{name}_filled`"
        )
    for name, expression in derived_expressions(spec):
        expressions.append(f"{expression} AS `{name}`")
    return "SELECT *, " + ", ".join(expressions) + " FROM __THIS__"


def assembled_columns(spec: FeatureSpec) -> list[str]:
    """Return the columns that the vector assembler reads, in order."""
    columns = [f"{name}_log1p" for name in spec.activity_columns]
    for name in spec.recency_columns:
        columns += [f"{name}_filled", f"{name}_missing"]
    columns += [name for name, _ in derived_expressions(spec)]
    columns += [f"{name}_onehot" for name in spec.categorical_columns]
    return columns


def preprocessing_stages(spec: FeatureSpec, scale: bool) -> list[Transformer]:
    """Build the pipeline stages from raw mart columns to the feature vector.

    Parameters
    ----------
    spec : FeatureSpec
        The discovered feature columns.
    scale : bool
        Append a ``StandardScaler`` (zero mean, unit variance), as the linear
        model needs; its output column is ``scaled_features``.

    Returns
    -------
    list
        Stages for a ``pyspark.ml.Pipeline``; the last writes ``features`` or
        ``scaled_features``.

    Notes
    -----
    ``StringIndexer`` orders categories alphabetically, so the encoding does
    not depend on the category counts of a particular split, and keeps an
    extra index for categories first seen at scoring time.
    """
    stages: list[Transformer] = [SQLTransformer(statement=imputation_statement(spec))]
    for name in spec.categorical_columns:
        stages.append(
            StringIndexer(
                inputCol=f"{name}_filled",
                outputCol=f"{name}_index",
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            )
        )
        stages.append(
            OneHotEncoder(inputCol=f"{name}_index", outputCol=f"{name}_onehot", dropLast=True)
        )
    stages.append(
        VectorAssembler(
            inputCols=assembled_columns(spec), outputCol=FEATURES_COLUMN, handleInvalid="error"
        )
    )
    if scale:
        stages.append(
            StandardScaler(
                inputCol=FEATURES_COLUMN,
                outputCol=SCALED_FEATURES_COLUMN,
                withMean=True,
                withStd=True,
            )
        )
    return stages


def vector_feature_names(frame: DataFrame, column: str = FEATURES_COLUMN) -> list[str]:
    """Return the slot names of an assembled vector column from its ML metadata.

    Parameters
    ----------
    frame : DataFrame
        A transformed frame that contains ``column``.
    column : str
        The vector column written by ``VectorAssembler``.

    Returns
    -------
    list of str
        One name per vector slot, in slot order; one-hot slots read
        ``main_device_onehot_<category>``.
    """
    metadata = frame.schema[column].metadata.get("ml_attr", {})
    slots: dict[int, str] = {}
    for group in metadata.get("attrs", {}).values():
        for attribute in group:
            slots[int(attribute["idx"])] = attribute["name"]
    size = int(metadata.get("num_attrs", len(slots)))
    return [slots.get(index, f"slot_{index}") for index in range(size)]


def labelled_users(features: DataFrame, labels: DataFrame) -> DataFrame:
    """Join the features with the churn labels into one frame with a double ``label``.

    Parameters
    ----------
    features : DataFrame
        The ``churn_features`` mart.
    labels : DataFrame
        The ``churn_labels`` mart (``user_id``, ``is_churned``).

    Returns
    -------
    DataFrame
        Every feature column plus ``label`` (1.0 churned, 0.0 retained), for
        the users present in both marts.
    """
    label = sf.col("is_churned").cast("double").alias(LABEL_COLUMN)
    return features.join(labels.select(ID_COLUMN, label), on=ID_COLUMN, how="inner")
