"""A local Spark Thrift Server (HiveServer2 protocol) for dbt's ``thrift`` target.

The server is the installed pyspark's ``HiveThriftServer2``, started with
``spark-submit``. It runs with the project's Spark settings (the ``local``
target's ``server_side_parameters``) and the shared metastore of
:mod:`python_ml.servers.metastore` in place of the embedded one, so the tables
that dbt builds through it are visible to the training job.

The address is the one the ``thrift`` target of ``profiles.yml`` connects to:
``MUSICBOX_THRIFT_HOST`` (default 127.0.0.1) and ``MUSICBOX_THRIFT_PORT``
(default 10000).
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_ml import config
from python_ml.servers import metastore, process

logger = logging.getLogger(__name__)

FILES = process.ServerFiles("thrift")
SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
# JVM option that points log4j at a configuration file.
LOG4J_OPTION = "-Dlog4j2.configurationFile="
DEFAULT_PORT = 10000
DEFAULT_USER = "music_box"
# Start-up takes about 15 s on an idle 2-core machine and several times that
# when other Spark jobs share the cores.
START_TIMEOUT_SECONDS = 300.0
# Limit of one connection attempt or one statement of a status check.
QUERY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Endpoint:
    """Address of the Thrift server, as the ``thrift`` target of ``profiles.yml`` reads it.

    Attributes
    ----------
    host : str
        ``MUSICBOX_THRIFT_HOST``, default 127.0.0.1.
    port : int
        ``MUSICBOX_THRIFT_PORT``, default 10000.
    user : str
        ``MUSICBOX_THRIFT_USER``, default ``music_box``.
    """

    host: str = process.LOOPBACK
    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER

    @classmethod
    def from_environment(cls) -> Endpoint:
        """Read the address from the environment variables that ``profiles.yml`` uses."""
        port_text = os.environ.get("MUSICBOX_THRIFT_PORT", str(DEFAULT_PORT))
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise config.ConfigError(
                f"MUSICBOX_THRIFT_PORT={port_text!r} is not a TCP port number (1-65535)"
            )
        return cls(
            host=os.environ.get("MUSICBOX_THRIFT_HOST", process.LOOPBACK),
            port=int(port_text),
            user=os.environ.get("MUSICBOX_THRIFT_USER", DEFAULT_USER),
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def spark_home() -> Path:
    """Return ``SPARK_HOME``, else the installed pyspark package, which ships ``bin/``."""
    configured = os.environ.get("SPARK_HOME")
    if configured:
        return Path(configured)
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def spark_submit() -> Path:
    """Return the ``spark-submit`` script of :func:`spark_home`."""
    path = spark_home() / "bin" / "spark-submit"
    if not path.is_file():
        raise process.ServerError(f"spark-submit not found at {path}: check SPARK_HOME")
    return path


def loopback_environment() -> dict[str, str]:
    """Return the environment that makes Spark daemons bind to 127.0.0.1 only."""
    return {"SPARK_LOCAL_IP": process.LOOPBACK, "SPARK_HOME": str(spark_home())}


def server_settings(master: str | None = None) -> dict[str, str]:
    """Return the server's Spark settings: the project's, with the shared metastore.

    Parameters
    ----------
    master : str, optional
        Spark master URL; by default the project's ``spark.master``.
    """
    settings = metastore.apply_metastore_mode(config.spark_settings(), metastore.SHARED)
    # The server's log file keeps Spark's default INFO level, which records
    # what the server did with each session. The project's quieter log4j
    # configuration is meant for interactive runs.
    java_options = shlex.split(settings.get("spark.driver.extraJavaOptions", ""))
    settings["spark.driver.extraJavaOptions"] = shlex.join(
        option for option in java_options if not option.startswith(LOG4J_OPTION)
    )
    settings["spark.app.name"] = "music_box_thrift"
    settings["spark.driver.host"] = process.LOOPBACK
    settings["spark.driver.bindAddress"] = process.LOOPBACK
    if master:
        settings["spark.master"] = master
    return settings


def server_command(endpoint: Endpoint, master: str | None = None) -> list[str]:
    """Return the ``spark-submit`` command line that runs the Thrift server."""
    command = [str(spark_submit()), "--class", SERVER_CLASS]
    for key, value in sorted(server_settings(master).items()):
        command += ["--conf", f"{key}={value}"]
    hive_settings = {
        "hive.server2.thrift.bind.host": endpoint.host,
        "hive.server2.thrift.port": str(endpoint.port),
        "hive.server2.transport.mode": "binary",
        "hive.server2.authentication": "NONE",
    }
    for key, value in hive_settings.items():
        command += ["--hiveconf", f"{key}={value}"]
    # spark-internal is the placeholder resource for classes shipped with Spark.
    command.append("spark-internal")
    return command


def connect(endpoint: Endpoint, timeout: float = QUERY_TIMEOUT_SECONDS) -> Any:
    """Open a PyHive connection whose socket gives up after ``timeout`` seconds.

    PyHive's own ``connect(host=...)`` sets no socket timeout, so a server
    that accepts connections but never responds would block forever.
    """
    import thrift_sasl
    from pyhive import hive
    from thrift.transport import TSocket

    thrift_socket = TSocket.TSocket(endpoint.host, endpoint.port)
    thrift_socket.setTimeout(int(timeout * 1000))

    def sasl_client() -> Any:
        # With authentication NONE the server accepts any non-empty password.
        return hive.get_installed_sasl(
            host=endpoint.host, sasl_auth="PLAIN", username=endpoint.user, password="x"
        )

    transport = thrift_sasl.TSaslClientTransport(sasl_client, "PLAIN", thrift_socket)
    return hive.connect(thrift_transport=transport, username=endpoint.user)


def _server_message(error: Exception) -> str:
    """Return the server's error message from a PyHive error, else the error's text."""
    response = error.args[0] if error.args else None
    message = getattr(getattr(response, "status", None), "errorMessage", None)
    return str(message or error).strip()


def run_query(
    sql: str, endpoint: Endpoint | None = None, timeout: float = QUERY_TIMEOUT_SECONDS
) -> list[tuple[Any, ...]]:
    """Run one statement on the server and return its rows.

    Raises
    ------
    ServerError
        When the server cannot be reached, does not respond in time, rejects
        the session or fails the statement; the message names the host and port.
    """
    from pyhive import exc
    from thrift.transport.TTransport import TTransportException

    endpoint = endpoint or Endpoint.from_environment()
    try:
        connection = connect(endpoint, timeout)
    except (OSError, EOFError, TTransportException) as error:
        raise process.ServerError(
            f"cannot connect to the Spark Thrift Server at {endpoint}: {error}; start it with "
            "`musicbox thrift start` or check MUSICBOX_THRIFT_HOST and MUSICBOX_THRIFT_PORT"
        ) from error
    except exc.Error as error:
        raise process.ServerError(
            f"the Spark Thrift Server at {endpoint} failed to open a session: "
            f"{_server_message(error)}"
        ) from error
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
        return [tuple(row) for row in rows]
    except (TimeoutError, TTransportException) as error:
        raise process.ServerError(
            f"the Spark Thrift Server at {endpoint} failed to respond within {timeout:.0f} s: "
            f"{error}"
        ) from error
    except exc.Error as error:
        raise process.ServerError(
            f"statement failed on the Spark Thrift Server at {endpoint}: {_server_message(error)}"
        ) from error
    finally:
        connection.close()


@contextmanager
def _quiet_client_logs() -> Iterator[None]:
    # thrift's TSocket logs every refused connection at ERROR and PyHive every
    # statement at INFO; while polling a server both are noise.
    loggers = [logging.getLogger(name) for name in ("thrift.transport.TSocket", "pyhive.hive")]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.setLevel(level)


def check(endpoint: Endpoint | None = None, timeout: float = QUERY_TIMEOUT_SECONDS) -> str | None:
    """Run ``select 1`` on the server; return None when it responds, else the reason it failed.

    A server whose shared metastore is down still accepts connections but
    fails every session, with ``SCHEMA_NOT_FOUND`` for the ``default`` schema
    or a ``MetaException`` from the Derby client. The reason then names the
    metastore instead.
    """
    endpoint = endpoint or Endpoint.from_environment()
    if not process.is_listening(endpoint.host, endpoint.port):
        return f"nothing is listening on {endpoint}"
    try:
        with _quiet_client_logs():
            rows = run_query("select 1", endpoint, timeout)
    except process.ServerError as error:
        if not metastore.ping():
            return (
                f"the Spark Thrift Server at {endpoint} is up but its shared metastore at "
                f"{metastore.Endpoint.from_environment()} is not responding: start it with "
                "`musicbox metastore start`"
            )
        return str(error)
    return None if rows == [(1,)] else f"`select 1` on {endpoint} returned {rows!r}"


def is_responding(endpoint: Endpoint | None = None, timeout: float = QUERY_TIMEOUT_SECONDS) -> bool:
    """Tell whether the server responds ``select 1`` over Thrift."""
    problem = check(endpoint, timeout)
    if problem:
        logger.debug("Thrift server not responding: %s", problem)
    return problem is None


def start(
    endpoint: Endpoint | None = None,
    *,
    master: str | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> int:
    """Start the Thrift server and wait until it responds a query; return its pid.

    Raises
    ------
    ServerError
        When Java is missing, the shared metastore does not respond, the port
        is taken, or the server exits or stays silent for ``timeout`` seconds.
    """
    endpoint = endpoint or Endpoint.from_environment()
    process.require_not_running(FILES)
    process.find_java()
    metastore.require_reachable()
    process.require_free_port(endpoint.host, endpoint.port, "Spark Thrift Server")
    command = server_command(endpoint, master)
    metastore.shared_warehouse_dir().mkdir(parents=True, exist_ok=True)
    pid = process.spawn(FILES, command, env=loopback_environment())
    process.wait_until_ready(
        FILES,
        pid,
        lambda: is_responding(endpoint),
        timeout=timeout,
        interval=2.0,
        condition=f"responding `select 1` on {endpoint}",
    )
    logger.info("Spark Thrift Server responding on %s", endpoint)
    return pid


def stop() -> bool:
    """Stop the Thrift server; return False when it was not running."""
    return process.stop(FILES, timeout=60.0)


def status(endpoint: Endpoint | None = None) -> tuple[int | None, str | None]:
    """Return the server's pid (None when not running from here) and :func:`check`'s result."""
    endpoint = endpoint or Endpoint.from_environment()
    return process.running_pid(FILES), check(endpoint)
