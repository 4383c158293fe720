"""SparkSession creation with the project's settings.

Every entry point that runs Spark in-process (training, benchmarks, tests)
comes through :func:`get_spark`, so it uses the same warehouse and metastore
that dbt's ``local`` target writes.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys

from pyspark.sql import SparkSession

from python_ml.config import ConfigError, spark_settings
from python_ml.servers.metastore import apply_metastore_mode

logger = logging.getLogger(__name__)

# Settings that only make sense when this process launches its own JVM. Under
# spark-submit they come from the submit command and must not be overridden.
LAUNCH_SETTINGS = ("spark.master", "spark.driver.memory", "spark.driver.extraJavaOptions")


def require_java() -> None:
    """Raise ConfigError with an install hint when no Java runtime is on the path."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise ConfigError("Java not found: install a Java 17 runtime (for example openjdk-17-jre)")


def get_spark(
    app_name: str = "music_box",
    *,
    launched_by_submit: bool | None = None,
    extra_settings: dict[str, str] | None = None,
) -> SparkSession:
    """Return a Hive-enabled SparkSession configured from ``profiles.yml``.

    Parameters
    ----------
    app_name : str
        Name shown in the Spark UI and logs.
    launched_by_submit : bool, optional
        True when the process was started by ``spark-submit``; then master,
        driver memory and JVM options are left to the submit command. By
        default it is detected from the environment that spark-submit sets.
    extra_settings : dict of str to str, optional
        Settings applied after the project's own and the metastore mode's.

    Notes
    -----
    Only one SparkContext exists per process: a second call returns the first
    session, and settings that need a new JVM (master, memory, metastore)
    then have no effect.
    """
    require_java()
    if launched_by_submit is None:
        # spark-submit's Python runner hands the child its gateway port.
        launched_by_submit = bool(os.environ.get("PYSPARK_GATEWAY_PORT"))
    # MUSICBOX_METASTORE=shared swaps the embedded Derby metastore for the
    # shared one of `musicbox metastore start`; =external leaves metastore and
    # warehouse to the cluster's own configuration.
    settings = apply_metastore_mode(spark_settings())
    if launched_by_submit:
        for key in LAUNCH_SETTINGS:
            settings.pop(key, None)
    else:
        # Python workers (mapInPandas, UDFs) must run this interpreter, whose
        # environment has pandas and pyarrow, not whatever python3 is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update(extra_settings or {})
    settings["spark.app.name"] = app_name
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, value)
    logger.debug(
        "starting Spark with %d settings (submitted=%s)", len(settings), launched_by_submit
    )
    return builder.getOrCreate()
