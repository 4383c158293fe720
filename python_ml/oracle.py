"""The generator's ground truth, seen from training: oracle churn probabilities and top songs.

``musicbox generate`` writes a ground-truth folder beside the raw logs; its
files are described in ``docs/generator.md`` and read through
``python_ml.generator.truth``. Training uses it, when present, to report how
far each model is from the best possible: the oracle AUC of the true churn
probabilities (given the hidden state, and given only the observed days) and
the ranking metrics of each user's true top songs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as st

from python_ml.generator import truth

logger = logging.getLogger(__name__)

OBSERVED_COLUMN = "observed_churn_probability"

ORACLE_SCHEMA = st.StructType(
    [
        st.StructField("user_id", st.LongType(), False),
        st.StructField("recommendation_rank", st.IntegerType(), False),
        st.StructField("song_id", st.LongType(), False),
    ]
)


class GroundTruth:
    """A ground-truth folder written by ``musicbox generate``.

    Parameters
    ----------
    path : Path
        The folder, which contains ``manifest.json``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._affinity: truth.AffinityModel | None = None

    @classmethod
    def open(cls, path: Path | None) -> GroundTruth | None:
        """Return the ground truth at ``path``, or None when there is none to use."""
        if path is None or not (Path(path) / truth.MANIFEST_FILE).is_file():
            logger.info("no ground truth at %s; oracle metrics are left out", path)
            return None
        logger.info("ground truth found at %s", path)
        return cls(Path(path))

    def churn_probabilities(self, user_ids: list[int]) -> pd.DataFrame:
        """Return ``user_id`` and the true churn probabilities of the given users it contains.

        ``churn_probability`` is conditional on each user's hidden state on
        the snapshot date. ``observed_churn_probability``, when the folder has
        it, infers that state from the observed days, which makes it the best
        any model can reach.
        Users missing from the ground truth, or whose probability is
        undefined (bots, users not yet joined), are left out.
        """
        users = truth.read_users(self.path)
        columns = ["user_id", "churn_probability"]
        if OBSERVED_COLUMN in users.columns:
            columns.append(OBSERVED_COLUMN)
        else:
            logger.info(
                "ground truth %s has no column %s, so the observed-days oracle is left "
                "out; run `musicbox generate` again to add it",
                self.path,
                OBSERVED_COLUMN,
            )
        selected = users.loc[users["user_id"].isin(set(user_ids)), columns]
        return selected.dropna(subset=["churn_probability"]).reset_index(drop=True)

    def top_songs_frame(self, users: DataFrame, n: int, exclude: DataFrame) -> DataFrame:
        """Return each user's true top ``n`` songs outside ``exclude`` as a recommendation frame.

        Parameters
        ----------
        users : DataFrame
            A ``user_id`` column; users unknown to the ground truth are skipped.
        n : int
            Songs per user.
        exclude : DataFrame
            (user_id, song_id) pairs to leave out, such as the training ratings.

        Returns
        -------
        DataFrame
            ``user_id``, ``recommendation_rank`` (1-based) and ``song_id``.

        Notes
        -----
        The users and their excluded songs are collected to the driver, where
        the generator's affinity model ranks the whole catalog per user.
        """
        if self._affinity is None:
            self._affinity = truth.AffinityModel.load(self.path)
        affinity = self._affinity
        user_ids = [int(row["user_id"]) for row in users.select("user_id").distinct().collect()]
        known = sorted(user for user in user_ids if user in affinity.user_index)
        if len(known) < len(user_ids):
            logger.warning(
                "ground truth %s lacks %d of %d users; the oracle ranks the rest",
                self.path,
                len(user_ids) - len(known),
                len(user_ids),
            )
        excluded = exclude.join(users.select("user_id").distinct(), on="user_id").toPandas()
        exclusions = excluded.groupby("user_id")["song_id"].apply(list).to_dict()
        ranked = affinity.top_songs(known, n, exclusions)
        rows = [
            (user, rank, int(song))
            for user, songs in ranked.items()
            for rank, song in enumerate(songs, start=1)
        ]
        spark = users.sparkSession
        return spark.createDataFrame(rows, ORACLE_SCHEMA)
