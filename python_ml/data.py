"""Read the marts that dbt builds and write the training outputs beside them.

dbt's default schema naming puts a model with ``+schema: marts`` into
``<target schema>_marts``; the training outputs go to ``<target schema>_ml``,
which ``models/ml/_ml__sources.yml`` declares as a dbt source.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "music_box"

CHURN_FEATURES = "churn_features"
CHURN_LABELS = "churn_labels"
USER_SONG_RATINGS = "user_song_ratings"
DIM_SONGS = "dim_songs"

CHURN_PREDICTIONS = "churn_predictions"
SONG_RECOMMENDATIONS = "song_recommendations"


class MissingTableError(RuntimeError):
    """A mart that training reads does not exist in the metastore."""

    def __init__(self, table: str) -> None:
        super().__init__(
            f"table {table} not found: build the marts with `dbt build` from the project "
            "root (with the same MUSICBOX_DATA_DIR and MUSICBOX_SCHEMA) and run training again"
        )
        self.table = table


@dataclass(frozen=True)
class Schemas:
    """Names of the schemas that training reads from and writes to.

    Attributes
    ----------
    base : str
        The dbt target's schema, ``MUSICBOX_SCHEMA`` (default ``music_box``).
    """

    base: str = DEFAULT_SCHEMA

    @classmethod
    def from_environment(cls) -> Schemas:
        """Build the schema names from ``MUSICBOX_SCHEMA``, as ``profiles.yml`` does."""
        return cls(os.environ.get("MUSICBOX_SCHEMA", DEFAULT_SCHEMA))

    @property
    def marts(self) -> str:
        """Schema of the dbt marts."""
        return f"{self.base}_marts"

    @property
    def ml(self) -> str:
        """Schema of the training outputs."""
        return f"{self.base}_ml"

    def mart(self, name: str) -> str:
        """Return the qualified name of a mart."""
        return f"{self.marts}.{name}"

    def output(self, name: str) -> str:
        """Return the qualified name of a training output table."""
        return f"{self.ml}.{name}"


def table_exists(spark: SparkSession, qualified_name: str) -> bool:
    """Tell whether ``schema.table`` is registered in the session's catalog."""
    schema = qualified_name.split(".", 1)[0]
    if not spark.catalog.databaseExists(schema):
        return False
    return spark.catalog.tableExists(qualified_name)


def read_mart(spark: SparkSession, schemas: Schemas, name: str) -> DataFrame:
    """Return a mart as a DataFrame.

    Parameters
    ----------
    spark : SparkSession
        A session on the metastore that dbt wrote.
    schemas : Schemas
        Schema names of the dbt target.
    name : str
        The mart's model name, such as ``churn_features``.

    Returns
    -------
    DataFrame
        The table, read lazily.

    Raises
    ------
    MissingTableError
        When the table is not in the catalog.
    """
    qualified = schemas.mart(name)
    if not table_exists(spark, qualified):
        raise MissingTableError(qualified)
    logger.debug("reading %s", qualified)
    return spark.table(qualified)


def read_optional_mart(spark: SparkSession, schemas: Schemas, name: str) -> DataFrame | None:
    """Return a mart, or None with an info line when it has not been built."""
    try:
        return read_mart(spark, schemas, name)
    except MissingTableError:
        logger.info("table %s not found; the report goes without it", schemas.mart(name))
        return None


def write_output(spark: SparkSession, schemas: Schemas, name: str, frame: DataFrame) -> str:
    """Replace a training output table with ``frame``, stored as parquet.

    Parameters
    ----------
    spark : SparkSession
        The session whose catalog receives the table.
    schemas : Schemas
        Schema names of the dbt target; the table goes to ``schemas.ml``.
    name : str
        Table name, such as ``churn_predictions``.
    frame : DataFrame
        Rows to write.

    Returns
    -------
    str
        The qualified name of the written table.

    Notes
    -----
    The table is dropped and written again, so readers between the two steps
    see no table. ``frame`` must not read the table it replaces.
    """
    qualified = schemas.output(name)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schemas.ml}")
    frame.write.mode("overwrite").format("parquet").saveAsTable(qualified)
    logger.info("wrote table %s", qualified)
    return qualified
