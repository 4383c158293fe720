"""Synthetic Music Box logs in the delivered archive format, with ground truth.

Modules, in the order the generator uses them:

- ``params``: calendar and calibrated parameters;
- ``catalog``: genres, singers and songs with Zipf popularity;
- ``population``: user ids, tastes, favourite songs and activity traits;
- ``churn``: daily activity, the hidden churn process and the oracle churn
  probability;
- ``events``: the content of each day's events;
- ``dirt``: planted rejects and valid-but-awkward lines;
- ``archive``: line formatting and deterministic ``.log.tar.gz`` writing;
- ``truth``: ground-truth files, ``oracle_auc`` and ``oracle_top_songs``;
- ``dataset``: :func:`generate_dataset`, which runs them all.
"""

from python_ml.generator.dataset import (
    DEFAULT_SEED,
    DEFAULT_USERS,
    GenerationSummary,
    generate_dataset,
)
from python_ml.generator.truth import oracle_auc, oracle_top_songs

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_USERS",
    "GenerationSummary",
    "generate_dataset",
    "oracle_auc",
    "oracle_top_songs",
]
