"""Seeded, deterministic splits: users for the churn models, (user, song) pairs for ALS.

Every split ranks rows by a 64-bit hash of their ids and the seed, never by
``rand()`` or ``randomSplit``. The same seed therefore gives the same split
whatever the partitioning, the cluster or the order of the table's files.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as sf

# Pair splits compare the hash, reduced modulo this, with fraction * this.
HASH_BUCKETS = 1_000_000


def _check_fraction(name: str, fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {fraction}")


def _stratum_positions(frame: DataFrame, id_column: str, label: str, seed: int) -> DataFrame:
    """Add each row's 1-based position in seeded hash order within its label, and the label size."""
    seeded_hash = sf.xxhash64(sf.col(id_column), sf.lit(seed))
    order = Window.partitionBy(label).orderBy(seeded_hash, id_column)
    stratum = Window.partitionBy(label)
    return frame.withColumn("_position", sf.row_number().over(order)).withColumn(
        "_stratum_size", sf.count(sf.lit(1)).over(stratum)
    )


def stratified_user_split(
    frame: DataFrame,
    test_fraction: float,
    seed: int,
    id_column: str = "user_id",
    label: str = "label",
) -> tuple[DataFrame, DataFrame]:
    """Split users into a training and a test part with the same label balance.

    Parameters
    ----------
    frame : DataFrame
        One row per user with a label column.
    test_fraction : float
        Share of each label's users that go to the test part, in (0, 1).
    seed : int
        Seed of the hash order.
    id_column, label : str
        The user id and label columns.

    Returns
    -------
    tuple of DataFrame
        ``(train, test)``, disjoint, together every row of ``frame``.

    Notes
    -----
    Within each label, users are ordered by ``xxhash64(user_id, seed)`` (ties
    by id) and the first ``round(n * test_fraction)`` go to test. When the
    label has two users or more, test gets at least one and at most ``n - 1``,
    so a tiny dataset still has both classes on both sides. The window gathers
    each label on one partition, which suits one row per user.
    """
    _check_fraction("test_fraction", test_fraction)
    ranked = _stratum_positions(frame, id_column, label, seed)
    size = sf.col("_stratum_size")
    wanted = sf.round(size * sf.lit(test_fraction))
    lower = sf.when(size >= 2, sf.lit(1)).otherwise(sf.lit(0))
    test_size = sf.least(sf.greatest(wanted, lower), sf.greatest(size - 1, sf.lit(0)))
    ranked = ranked.withColumn("_is_test", sf.col("_position") <= test_size)
    helpers = ["_position", "_stratum_size", "_is_test"]
    train = ranked.filter(~sf.col("_is_test")).drop(*helpers)
    test = ranked.filter(sf.col("_is_test")).drop(*helpers)
    return train, test


def assign_folds(
    frame: DataFrame,
    folds: int,
    seed: int,
    id_column: str = "user_id",
    label: str = "label",
    fold_column: str = "fold",
) -> DataFrame:
    """Add a stratified cross-validation fold number in ``[0, folds)`` to every user.

    Within each label, users in seeded hash order are dealt to the folds in
    turn, so every fold contains the same share of each label, to within one user.
    The hash takes ``seed + 1`` so that folds do not line up with the test split.
    """
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    ranked = _stratum_positions(frame, id_column, label, seed + 1)
    fold = ((sf.col("_position") - 1) % folds).cast("int")
    return ranked.withColumn(fold_column, fold).drop("_position", "_stratum_size")


def split_pairs(
    frame: DataFrame,
    test_fraction: float,
    seed: int,
    columns: tuple[str, str] = ("user_id", "song_id"),
) -> tuple[DataFrame, DataFrame]:
    """Split (user, song) rows into training and test parts by a seeded hash.

    Parameters
    ----------
    frame : DataFrame
        One row per pair.
    test_fraction : float
        Expected share of pairs in the test part, in (0, 1).
    seed : int
        Seed of the hash.
    columns : tuple of str
        The two id columns that identify a pair.

    Returns
    -------
    tuple of DataFrame
        ``(train, test)``; a pair goes to test when
        ``pmod(xxhash64(user, song, seed), 1e6) < test_fraction * 1e6``, so the
        test share is ``test_fraction`` in expectation, not exactly.
    """
    _check_fraction("test_fraction", test_fraction)
    bucket = sf.pmod(
        sf.xxhash64(*[sf.col(name) for name in columns], sf.lit(seed)), sf.lit(HASH_BUCKETS)
    )
    is_test = bucket < sf.lit(round(test_fraction * HASH_BUCKETS))
    return frame.filter(~is_test), frame.filter(is_test)
