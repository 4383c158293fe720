"""ALS on the 0-5 ratings, the baselines it is judged against, and top-N lists.

Training fits two ALS models with the same code: explicit ALS predicts
ratings, and implicit-feedback ALS (``implicitPrefs=True``) ranks songs.

Explicit ALS comes in two forms. Plain ALS fits the ratings themselves.
Biased ALS first fits a :class:`RatingBaseline` on the training ratings, the
global mean plus a regularised bias per user and per song, then fits ALS on
what the baseline leaves (rating minus baseline) and adds the baseline back
to every prediction: ``mean + user bias + song bias + user factors . song
factors``, clipped to the range of the training ratings. A grid point is
biased when it sets ``userBiasReg`` or ``songBiasReg``.

ALS takes 32-bit integer ids while user and song ids are 64-bit, so both are
mapped to dense indices by :class:`IdIndex` (ids in ascending order get 0, 1,
2, ...) and mapped back for every output. Top-N lists are computed exactly by
:func:`top_n_from_factors`, which scores every candidate song of each user
against the broadcast song factors and leaves out the songs given in
``exclude`` (for evaluation, the songs the user had in training).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as st

logger = logging.getLogger(__name__)

USER_ID = "user_id"
SONG_ID = "song_id"
USER_INDEX = "user_index"
SONG_INDEX = "song_index"
RATING = "rating"
PREDICTION = "prediction"
RANK = "recommendation_rank"
SCORE = "score"

# ALS ids are Java ints.
MAX_INDEX = 2**31 - 1
# Upper bound on user x song scores held at once while ranking one chunk of
# users (8 bytes each: 32 MB).
MAX_SCORE_CELLS = 4_000_000

# Grid-point keys that make explicit ALS biased: the shrinkage of the user and
# song biases, in ratings (a bias is a sum of residuals over count + reg).
BIAS_KEYS = ("userBiasReg", "songBiasReg")
# Alternating passes over song and user biases. A fixed count keeps the fit
# to a known number of Spark jobs.
BASELINE_ROUNDS = 3
BIAS_REGS = {"userBiasReg": 5.0, "songBiasReg": 25.0}

# Explicit ALS, tuned on validation RMSE over plain and biased points; the
# best plain point is refitted and reported too. The standard points and
# the validation runs behind them are described in docs/training.md.
ALS_GRIDS: dict[str, list[dict[str, Any]]] = {
    "quick": [
        {"rank": 10, "regParam": 0.1, "maxIter": 5, **BIAS_REGS},
        {"rank": 10, "regParam": 0.1, "maxIter": 5},
    ],
    "standard": [
        {"rank": 80, "regParam": 0.1, "maxIter": 10, **BIAS_REGS},
        {"rank": 10, "regParam": 0.1, "maxIter": 5},
    ],
}

# Implicit-feedback ALS (ratings as confidence 1 + alpha * rating), tuned on
# validation NDCG@k: it ranks songs by the chance of any interaction, which
# explicit ALS, fitted on observed ratings only, does not model. One point per
# grid keeps the default run short; the quick point already ranks about six
# times better than popularity at the generator's default scale.
IMPLICIT_ALS_GRIDS: dict[str, list[dict[str, Any]]] = {
    "quick": [{"rank": 10, "regParam": 0.1, "maxIter": 5, "alpha": 10.0}],
    "standard": [{"rank": 10, "regParam": 0.1, "maxIter": 10, "alpha": 10.0}],
}

TOP_N_SCHEMA = st.StructType(
    [
        st.StructField(USER_INDEX, st.IntegerType(), False),
        st.StructField(RANK, st.IntegerType(), False),
        st.StructField(SONG_INDEX, st.IntegerType(), False),
        st.StructField(SCORE, st.DoubleType(), False),
    ]
)


class IdIndex:
    """A dense 0-based int index of 64-bit ids, in ascending id order.

    Parameters
    ----------
    frame : DataFrame
        Two columns: the id (bigint) and its index (int).
    id_column, index_column : str
        Their names.
    """

    def __init__(self, frame: DataFrame, id_column: str, index_column: str) -> None:
        self.frame = frame
        self.id_column = id_column
        self.index_column = index_column

    @classmethod
    def build(cls, ids: DataFrame, id_column: str, index_column: str) -> IdIndex:
        """Index the distinct non-NULL ids of one column of ``ids``.

        Raises
        ------
        ValueError
            When there are more distinct ids than a Java int can index.

        Notes
        -----
        The ids are sorted before ``zipWithIndex``, so the mapping depends only
        on the set of ids, not on partitioning or read order.
        """
        spark = ids.sparkSession
        distinct = ids.select(sf.col(id_column).cast("long")).dropna().distinct().orderBy(id_column)
        pairs = distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1]))
        schema = st.StructType(
            [
                st.StructField(id_column, st.LongType(), False),
                st.StructField(index_column, st.LongType(), False),
            ]
        )
        frame = spark.createDataFrame(pairs, schema)
        frame = frame.select(id_column, sf.col(index_column).cast("int").alias(index_column))
        index = cls(frame.cache(), id_column, index_column)
        if index.size() > MAX_INDEX + 1:
            raise ValueError(
                f"{index.size()} distinct values of {id_column} exceed the {MAX_INDEX + 1} "
                "that ALS can index"
            )
        return index

    def size(self) -> int:
        """Return the number of indexed ids."""
        return self.frame.count()

    def encode(self, frame: DataFrame) -> DataFrame:
        """Add the index column to ``frame``; rows whose id is not indexed are dropped."""
        return frame.join(self.frame, on=self.id_column, how="inner")

    def decode(self, frame: DataFrame) -> DataFrame:
        """Replace the index column of ``frame`` by the id it stands for."""
        return frame.join(self.frame, on=self.index_column, how="inner").drop(self.index_column)

    def save(self, path: Path) -> None:
        """Write the mapping as parquet, replacing any earlier copy."""
        self.frame.write.mode("overwrite").parquet(str(path))

    @classmethod
    def load(cls, spark: SparkSession, path: Path, id_column: str, index_column: str) -> IdIndex:
        """Read a mapping written by :meth:`save`."""
        return cls(spark.read.parquet(str(path)), id_column, index_column)


def is_biased(params: dict[str, Any]) -> bool:
    """Return whether an explicit ALS grid point fits a baseline first."""
    return any(key in params for key in BIAS_KEYS)


@dataclass
class RatingBaseline:
    """Global mean plus regularised user and song biases, fitted on training ratings.

    Attributes
    ----------
    global_mean : float
        Mean training rating.
    user_bias : DataFrame
        ``user_index``, ``user_bias``: one row per user with training ratings.
    song_bias : DataFrame
        ``song_index``, ``song_bias``: one row per song with training ratings.
    user_reg, song_reg : float
        Shrinkage used in the fit.
    lowest, highest : float
        Smallest and largest training rating; predictions are clipped to them.

    Notes
    -----
    The fit alternates, ``rounds`` times, song biases
    ``b_s = sum(r - mean - b_u) / (n_s + song_reg)`` over the song's ratings
    and user biases ``b_u = sum(r - mean - b_s) / (n_u + user_reg)`` over the
    user's, starting from ``b_u = 0``. A user or song without training
    ratings has bias 0.
    """

    global_mean: float
    user_bias: DataFrame
    song_bias: DataFrame
    user_reg: float
    song_reg: float
    lowest: float
    highest: float

    @classmethod
    def fit(
        cls,
        encoded: DataFrame,
        user_reg: float,
        song_reg: float,
        rounds: int = BASELINE_ROUNDS,
    ) -> RatingBaseline:
        """Fit the baseline on ``user_index``, ``song_index``, ``rating`` rows.

        Raises
        ------
        ValueError
            When a shrinkage is negative, ``rounds`` is below 1 or there are no ratings.
        """
        if user_reg < 0 or song_reg < 0:
            raise ValueError(f"bias shrinkage must be non-negative, got {user_reg}, {song_reg}")
        if rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        summary = encoded.agg(
            sf.avg(RATING).alias("mean"), sf.min(RATING).alias("low"), sf.max(RATING).alias("high")
        ).first()
        if summary["mean"] is None:
            raise ValueError("no ratings to fit the baseline on")
        mean = float(summary["mean"])
        user_bias: DataFrame | None = None
        song_bias: DataFrame | None = None
        for _ in range(rounds):
            with_user = (
                encoded.withColumn("user_bias", sf.lit(0.0))
                if user_bias is None
                else encoded.join(user_bias, on=USER_INDEX, how="inner")
            )
            new_song_bias = _shrunk_mean(
                with_user, SONG_INDEX, sf.col(RATING) - mean - sf.col("user_bias"), song_reg
            ).withColumnRenamed("bias", "song_bias")
            new_song_bias = new_song_bias.cache()
            new_song_bias.count()
            with_song = encoded.join(new_song_bias, on=SONG_INDEX, how="inner")
            new_user_bias = _shrunk_mean(
                with_song, USER_INDEX, sf.col(RATING) - mean - sf.col("song_bias"), user_reg
            ).withColumnRenamed("bias", "user_bias")
            new_user_bias = new_user_bias.cache()
            new_user_bias.count()
            for old in (user_bias, song_bias):
                if old is not None:
                    old.unpersist()
            user_bias, song_bias = new_user_bias, new_song_bias
        return cls(
            global_mean=mean,
            user_bias=user_bias,
            song_bias=song_bias,
            user_reg=float(user_reg),
            song_reg=float(song_reg),
            lowest=float(summary["low"]),
            highest=float(summary["high"]),
        )

    def add(self, frame: DataFrame, column: str = "baseline") -> DataFrame:
        """Add ``column``, the baseline rating of each (user_index, song_index) row of ``frame``."""
        joined = frame.join(self.user_bias, on=USER_INDEX, how="left").join(
            self.song_bias, on=SONG_INDEX, how="left"
        )
        value = (
            sf.lit(self.global_mean)
            + sf.coalesce(sf.col("user_bias"), sf.lit(0.0))
            + sf.coalesce(sf.col("song_bias"), sf.lit(0.0))
        )
        return joined.withColumn(column, value).drop("user_bias", "song_bias")

    def clip(self, value: Any) -> Any:
        """Return the Spark column ``value`` clipped to the range of the training ratings."""
        return sf.least(sf.greatest(value, sf.lit(self.lowest)), sf.lit(self.highest))

    def song_bias_array(self, size: int) -> np.ndarray:
        """Return the song biases by song index, 0 for songs without training ratings."""
        biases = np.zeros(size)
        for row in self.song_bias.collect():
            biases[row[SONG_INDEX]] = row["song_bias"]
        return biases

    def save(self, path: Path) -> None:
        """Write both bias tables as parquet and the mean and shrinkage as JSON."""
        path.mkdir(parents=True, exist_ok=True)
        self.user_bias.write.mode("overwrite").parquet(str(path / "user_bias"))
        self.song_bias.write.mode("overwrite").parquet(str(path / "song_bias"))
        settings = {
            "global_mean": self.global_mean,
            "user_reg": self.user_reg,
            "song_reg": self.song_reg,
            "lowest": self.lowest,
            "highest": self.highest,
        }
        (path / "baseline.json").write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: Path) -> RatingBaseline:
        """Read a baseline written by :meth:`save`."""
        settings = json.loads((path / "baseline.json").read_text())
        return cls(
            global_mean=float(settings["global_mean"]),
            user_bias=spark.read.parquet(str(path / "user_bias")),
            song_bias=spark.read.parquet(str(path / "song_bias")),
            user_reg=float(settings["user_reg"]),
            song_reg=float(settings["song_reg"]),
            lowest=float(settings["lowest"]),
            highest=float(settings["highest"]),
        )


def _shrunk_mean(frame: DataFrame, key: str, residual: Any, reg: float) -> DataFrame:
    """Return ``key`` and ``bias``: the sum of ``residual`` over count plus ``reg``, per key."""
    return frame.groupBy(key).agg(
        (sf.sum(residual) / (sf.count(sf.lit(1)) + sf.lit(float(reg)))).alias("bias")
    )


def make_als(params: dict[str, Any], seed: int, checkpoint_interval: int) -> ALS:
    """Return an ALS estimator over the index columns, explicit unless ``params`` set otherwise.

    Parameters
    ----------
    params : dict
        ``rank``, ``regParam`` and ``maxIter``, or any other ALS parameter;
        ``implicitPrefs=True`` (with ``alpha``) gives implicit-feedback ALS.
    seed : int
        Seed of the factor initialisation.
    checkpoint_interval : int
        Iterations between checkpoints of the factors; it takes effect only
        when the SparkContext has a checkpoint directory.

    Notes
    -----
    Without checkpoints, the lineage of the factor RDDs grows with every
    iteration and a long run can overflow the JVM stack.
    ``coldStartStrategy="drop"`` removes predictions for users or songs
    unseen in training, which ALS would otherwise return as NaN.
    """
    settings = {"implicitPrefs": False, "coldStartStrategy": "drop", **params}
    return ALS(
        userCol=USER_INDEX,
        itemCol=SONG_INDEX,
        ratingCol=RATING,
        seed=seed,
        checkpointInterval=checkpoint_interval,
        **settings,
    )


@dataclass
class Recommender:
    """A fitted ALS model with the id mappings that make it usable on 64-bit ids.

    Attributes
    ----------
    model : ALSModel
        Factors over the dense indices.
    users, songs : IdIndex
        Mappings of ``user_id`` to ``user_index`` and ``song_id`` to ``song_index``.
    """

    model: ALSModel
    users: IdIndex
    songs: IdIndex
    baseline: RatingBaseline | None = None

    def predict(self, pairs: DataFrame) -> DataFrame:
        """Predict ratings of (user_id, song_id) rows; pairs with an unseen id are dropped.

        With a baseline, the prediction is the baseline plus ALS's prediction
        of the residual, clipped to the range of the training ratings.
        """
        encoded = self.songs.encode(self.users.encode(pairs))
        predicted = self.model.transform(encoded)
        if self.baseline is not None:
            predicted = self.baseline.add(predicted, "baseline")
            predicted = predicted.withColumn(
                PREDICTION, self.baseline.clip(sf.col(PREDICTION) + sf.col("baseline"))
            ).drop("baseline")
        return predicted.drop(USER_INDEX, SONG_INDEX)

    def song_factors(self) -> np.ndarray:
        """Return the song factors as a matrix with one row per song index.

        Songs that have an index but no factor (seen only outside training)
        get a row of NaN, so they score NaN and are never recommended.
        """
        rows = self.model.itemFactors.collect()
        matrix = np.full((self.songs.size(), self.model.rank), np.nan)
        for row in rows:
            matrix[row["id"]] = row["features"]
        return matrix

    def recommend(self, users: DataFrame, n: int, exclude: DataFrame | None = None) -> DataFrame:
        """Return the top ``n`` songs for each user in ``users``.

        Parameters
        ----------
        users : DataFrame
            A ``user_id`` column; users without factors get no row.
        n : int
            Number of songs per user.
        exclude : DataFrame, optional
            (user_id, song_id) pairs never to recommend, such as songs the
            user already played.

        Returns
        -------
        DataFrame
            ``user_id``, ``recommendation_rank`` (1 is best), ``song_id`` and
            ``score`` (the predicted rating, baseline included).
        """
        factors = self.model.userFactors.select(
            sf.col("id").alias(USER_INDEX), sf.col("features").alias("factors")
        )
        song_factors = self.song_factors()
        if self.baseline is not None:
            # mean + b_u + b_s + u.v as one dot product: [u, 1, mean + b_u] . [v, b_s, 1].
            user_terms = factors.join(self.baseline.user_bias, on=USER_INDEX, how="left")
            constant = sf.lit(self.baseline.global_mean) + sf.coalesce("user_bias", sf.lit(0.0))
            factors = user_terms.select(
                USER_INDEX,
                sf.concat(
                    sf.col("factors").cast("array<double>"), sf.array(sf.lit(1.0), constant)
                ).alias("factors"),
            )
            extra = np.column_stack(
                [self.baseline.song_bias_array(len(song_factors)), np.ones(len(song_factors))]
            )
            extra[np.isnan(song_factors).any(axis=1)] = np.nan
            song_factors = np.hstack([song_factors, extra])
        query = self.users.encode(users.select(USER_ID).distinct()).join(
            factors, on=USER_INDEX, how="inner"
        )
        excluded = None if exclude is None else self.songs.encode(self.users.encode(exclude))
        ranked = top_n_from_factors(query, song_factors, excluded, n)
        if self.baseline is not None:
            # Clipping keeps the order, so it applies after the ranking.
            ranked = ranked.withColumn(SCORE, self.baseline.clip(sf.col(SCORE)))
        return self.songs.decode(self.users.decode(ranked)).select(USER_ID, RANK, SONG_ID, SCORE)

    def save(self, path: Path) -> None:
        """Save the ALS model (Spark ML persistence) and both id mappings under ``path``."""
        self.model.write().overwrite().save(str(path / "als"))
        self.users.save(path / "user_index")
        self.songs.save(path / "song_index")
        if self.baseline is not None:
            self.baseline.save(path / "baseline")
        logger.info("saved recommender to %s", path)

    @classmethod
    def load(cls, spark: SparkSession, path: Path) -> Recommender:
        """Load a recommender saved by :meth:`save`, with its baseline when it has one.

        Raises
        ------
        FileNotFoundError
            When ``path`` contains no saved ALS model.
        """
        if not (Path(path) / "als").exists():
            raise FileNotFoundError(f"no saved recommender at {path}")
        return cls(
            model=ALSModel.load(str(path / "als")),
            users=IdIndex.load(spark, path / "user_index", USER_ID, USER_INDEX),
            songs=IdIndex.load(spark, path / "song_index", SONG_ID, SONG_INDEX),
            baseline=(
                RatingBaseline.load(spark, path / "baseline")
                if (Path(path) / "baseline" / "baseline.json").is_file()
                else None
            ),
        )


def fit_recommender(
    ratings: DataFrame,
    users: IdIndex,
    songs: IdIndex,
    params: dict[str, Any],
    seed: int,
    checkpoint_interval: int,
) -> Recommender:
    """Fit ALS on (user_id, song_id, rating) rows, biased when ``params`` ask for it.

    Parameters
    ----------
    ratings : DataFrame
        Training ratings; a biased model's baseline is fitted on these rows only.
    users, songs : IdIndex
        Id mappings.
    params : dict
        ALS parameters; ``userBiasReg`` and ``songBiasReg`` (see
        :func:`is_biased`) ask for a :class:`RatingBaseline` with that
        shrinkage and ALS on the residuals.
    seed : int
        Seed of the factor initialisation.
    checkpoint_interval : int
        Iterations between checkpoints of the factors.

    Raises
    ------
    ValueError
        When bias keys are combined with ``implicitPrefs``.

    Notes
    -----
    ALS reads its input several times, and an input recomputed differently
    between passes can make it fail. The encoded ratings (or residuals) are
    therefore cached first, so that every pass reads the same rows.
    """
    settings = {key: value for key, value in params.items() if key not in BIAS_KEYS}
    encoded = songs.encode(users.encode(ratings)).select(USER_INDEX, SONG_INDEX, RATING).cache()
    baseline = None
    cached = [encoded]
    try:
        source = encoded
        if is_biased(params):
            if settings.get("implicitPrefs", False):
                raise ValueError("bias terms apply to explicit ALS only, not implicitPrefs")
            baseline = RatingBaseline.fit(
                encoded, params.get("userBiasReg", 0.0), params.get("songBiasReg", 0.0)
            )
            residual = sf.col(RATING) - sf.col("baseline")
            source = (
                baseline.add(encoded).select(USER_INDEX, SONG_INDEX, residual.alias(RATING)).cache()
            )
            cached.append(source)
        model = make_als(settings, seed, checkpoint_interval).fit(source)
    finally:
        for frame in cached:
            frame.unpersist()
    return Recommender(model=model, users=users, songs=songs, baseline=baseline)


def baseline_rmses(train: DataFrame, scored: DataFrame) -> dict[str, float]:
    """Return the RMSE of the global-mean and user-mean baselines on ALS's scored pairs.

    Parameters
    ----------
    train : DataFrame
        Training ratings (user_id, rating).
    scored : DataFrame
        Test pairs that ALS scored (user_id, rating), so both baselines are
        judged on exactly the pairs ALS was.

    Returns
    -------
    dict
        ``global_mean`` (predict the mean training rating) and ``user_mean``
        (predict the user's mean training rating, the global mean for a user
        without training ratings).
    """
    global_mean = train.agg(sf.avg(RATING)).first()[0]
    user_means = train.groupBy(USER_ID).agg(sf.avg(RATING).alias("user_mean"))
    with_means = scored.select(USER_ID, RATING).join(user_means, on=USER_ID, how="left")
    errors = with_means.select(
        sf.pow(sf.col(RATING) - sf.lit(global_mean), 2).alias("global_error"),
        sf.pow(sf.col(RATING) - sf.coalesce("user_mean", sf.lit(global_mean)), 2).alias(
            "user_error"
        ),
    )
    row = errors.agg(
        sf.sqrt(sf.avg("global_error")).alias("global_mean"),
        sf.sqrt(sf.avg("user_error")).alias("user_mean"),
    ).first()
    return {
        "global_mean": float("nan") if row["global_mean"] is None else float(row["global_mean"]),
        "user_mean": float("nan") if row["user_mean"] is None else float(row["user_mean"]),
    }


def song_popularity(train: DataFrame, songs: IdIndex) -> np.ndarray:
    """Return the number of distinct training users of each song, by song index.

    Songs without training ratings get NaN, so the popularity baseline never
    recommends them, as ALS cannot.
    """
    counts = songs.encode(train).groupBy(SONG_INDEX).agg(sf.countDistinct(USER_ID).alias("users"))
    popularity = np.full(songs.size(), np.nan)
    for row in counts.collect():
        popularity[row[SONG_INDEX]] = row["users"]
    return popularity


def popularity_recommendations(
    users: DataFrame,
    popularity: np.ndarray,
    user_index: IdIndex,
    song_index: IdIndex,
    n: int,
    exclude: DataFrame | None = None,
) -> DataFrame:
    """Recommend the ``n`` most popular songs that each user does not have in ``exclude``.

    Popularity is a rank-one factor model: every user's factor is 1 and every
    song's is its popularity, so the same exact top-N code serves both.
    Ties go to the lower song index, that is, the smaller song id.
    """
    query = user_index.encode(users.select(USER_ID).distinct()).select(
        USER_INDEX, sf.array(sf.lit(1.0)).alias("factors")
    )
    excluded = None if exclude is None else song_index.encode(user_index.encode(exclude))
    ranked = top_n_from_factors(query, popularity.reshape(-1, 1), excluded, n)
    decoded = song_index.decode(user_index.decode(ranked))
    return decoded.select(USER_ID, RANK, SONG_ID, SCORE)


def top_n_from_factors(
    query: DataFrame,
    song_factors: np.ndarray,
    exclude: DataFrame | None,
    n: int,
) -> DataFrame:
    """Rank songs for each user by the dot product of user and song factors.

    Parameters
    ----------
    query : DataFrame
        ``user_index`` and ``factors`` (array of numbers) for each user to rank for.
    song_factors : ndarray
        One row per song index; a NaN row marks a song that is never recommended.
    exclude : DataFrame, optional
        ``user_index`` and ``song_index`` pairs to leave out.
    n : int
        Number of songs per user; a user gets fewer when fewer candidates remain.

    Returns
    -------
    DataFrame
        ``user_index``, ``recommendation_rank`` (1-based), ``song_index``, ``score``.

    Notes
    -----
    The song factors are broadcast, and each task scores chunks of at most
    ``MAX_SCORE_CELLS`` user-song cells with NumPy. Equal scores are ordered
    by song index, so the output is deterministic.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    spark = query.sparkSession
    if exclude is not None:
        excluded_lists = exclude.groupBy(USER_INDEX).agg(
            sf.collect_list(SONG_INDEX).alias("excluded")
        )
        query = query.join(excluded_lists, on=USER_INDEX, how="left")
    else:
        query = query.withColumn("excluded", sf.lit(None).cast("array<int>"))
    query = query.select(USER_INDEX, sf.col("factors").cast("array<double>"), "excluded")
    broadcast = spark.sparkContext.broadcast(np.ascontiguousarray(song_factors, dtype=np.float64))

    def rank_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        matrix = broadcast.value
        rows_per_chunk = max(1, MAX_SCORE_CELLS // max(1, matrix.shape[0]))
        for batch in batches:
            for start in range(0, len(batch), rows_per_chunk):
                yield rank_chunk(batch.iloc[start : start + rows_per_chunk], matrix, n)

    return query.mapInPandas(rank_partition, schema=TOP_N_SCHEMA)


def rank_chunk(chunk: pd.DataFrame, song_factors: np.ndarray, n: int) -> pd.DataFrame:
    """Return the top ``n`` songs of each user in one chunk of a top_n_from_factors query."""
    users = chunk[USER_INDEX].to_numpy()
    if len(users) == 0:
        return pd.DataFrame({name: pd.Series(dtype="int32") for name in TOP_N_SCHEMA.names})
    factors = np.vstack([np.asarray(vector, dtype=np.float64) for vector in chunk["factors"]])
    scores = factors @ song_factors.T
    scores[np.isnan(scores)] = -np.inf
    take = min(n, scores.shape[1])
    # The take-th largest score of each row: every song scoring at least this
    # is a candidate, so ties at the cut are settled by song index below.
    cut = -np.partition(-scores, take - 1, axis=1)[:, take - 1]
    columns: dict[str, list[np.ndarray]] = {name: [] for name in TOP_N_SCHEMA.names}
    for row, excluded in enumerate(chunk["excluded"]):
        row_scores = scores[row]
        if excluded is not None and len(excluded):
            row_scores[np.asarray(excluded, dtype=np.int64)] = -np.inf
            cut[row] = -np.partition(-row_scores, take - 1)[take - 1]
        candidates = np.flatnonzero((row_scores >= cut[row]) & np.isfinite(row_scores))
        # lexsort orders by its last key first: score descending, then song index.
        order = np.lexsort((candidates, -row_scores[candidates]))[:take]
        best = candidates[order]
        columns[USER_INDEX].append(np.full(best.size, users[row], dtype=np.int32))
        columns[RANK].append(np.arange(1, best.size + 1, dtype=np.int32))
        columns[SONG_INDEX].append(best.astype(np.int32))
        columns[SCORE].append(row_scores[best].astype(np.float64))
    return pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})
