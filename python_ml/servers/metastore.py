"""Shared Hive metastore: a Derby network server, and the Spark settings that use it.

The ``local`` dbt target keeps its embedded Derby metastore, which admits one
JVM at a time. The Thrift server, a ``spark-submit`` job and an in-process
session started with ``MUSICBOX_METASTORE=shared`` instead connect to one
Derby network server over JDBC. They then see the same databases and tables
at the same time, as the processes of an EMR cluster share its metastore.

Derby comes from Debian's ``libderby-java`` (server) and
``libderbyclient-java`` (client driver), installed by
``scripts/install_system_packages.sh``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from python_ml import config
from python_ml.servers import process

logger = logging.getLogger(__name__)

FILES = process.ServerFiles("metastore")
DATABASE_NAME = "metastore"
DEFAULT_PORT = 1527
DEFAULT_JAR_DIR = Path("/usr/share/java")
SERVER_CLASS = "org.apache.derby.drda.NetworkServerControl"
CLIENT_DRIVER_CLASS = "org.apache.derby.jdbc.ClientDriver"
START_TIMEOUT_SECONDS = 60.0
# One ``NetworkServerControl ping`` starts a JVM: about 2 s on an idle machine.
PING_TIMEOUT_SECONDS = 30.0

# Values of MUSICBOX_METASTORE for in-process sessions (see apply_metastore_mode).
MODE_VARIABLE = "MUSICBOX_METASTORE"
EMBEDDED, SHARED, EXTERNAL = "embedded", "shared", "external"
MODES = (EMBEDDED, SHARED, EXTERNAL)

# Settings of the local target that choose the metastore and the warehouse.
METASTORE_KEYS = (
    "spark.hadoop.javax.jdo.option.ConnectionURL",
    "spark.hadoop.javax.jdo.option.ConnectionDriverName",
    "spark.hadoop.datanucleus.schema.autoCreateAll",
    "spark.hadoop.hive.metastore.schema.verification",
    "spark.sql.warehouse.dir",
)


@dataclass(frozen=True)
class Endpoint:
    """Address of the Derby network server.

    Attributes
    ----------
    host : str
        Host the server listens on and clients connect to.
    port : int
        TCP port, ``MUSICBOX_METASTORE_PORT`` (default 1527).
    """

    host: str = process.LOOPBACK
    port: int = DEFAULT_PORT

    @classmethod
    def from_environment(cls) -> Endpoint:
        """Read ``MUSICBOX_METASTORE_HOST`` and ``MUSICBOX_METASTORE_PORT``."""
        host = os.environ.get("MUSICBOX_METASTORE_HOST", process.LOOPBACK)
        return cls(host, _port_from_environment("MUSICBOX_METASTORE_PORT", DEFAULT_PORT))

    @property
    def jdbc_url(self) -> str:
        """JDBC URL of the metastore database; Derby creates it on first connection."""
        return f"jdbc:derby://{self.host}:{self.port}/{DATABASE_NAME};create=true"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _port_from_environment(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise config.ConfigError(f"{variable}={text!r} is not a TCP port number (1-65535)")
    return int(text)


def jar_dir() -> Path:
    """Return the folder of the Derby jars, ``MUSICBOX_DERBY_JARS`` or ``/usr/share/java``."""
    return Path(os.environ.get("MUSICBOX_DERBY_JARS", str(DEFAULT_JAR_DIR)))


def _jar(name: str, package: str) -> Path:
    path = jar_dir() / name
    if not path.is_file():
        raise process.ServerError(
            f"{path} not found: install the Debian package {package} "
            "(scripts/install_system_packages.sh) or set MUSICBOX_DERBY_JARS to the folder "
            f"that contains {name}"
        )
    return path


def server_classpath() -> str:
    """Return the class path of the Derby network server."""
    return f"{_jar('derby.jar', 'libderby-java')}:{_jar('derbynet.jar', 'libderby-java')}"


def client_jar() -> Path:
    """Return the Derby JDBC client driver, which Spark drivers need on their class path."""
    return _jar("derbyclient.jar", "libderbyclient-java")


def shared_warehouse_dir() -> Path:
    """Return the warehouse folder of every process that uses the shared metastore."""
    return config.data_dir() / "servers" / "warehouse"


def derby_home() -> Path:
    """Return ``derby.system.home``, the folder that contains the metastore database."""
    return FILES.directory / "derby"


def shared_settings(endpoint: Endpoint | None = None) -> dict[str, str]:
    """Return the Spark settings that replace the embedded metastore with the shared one.

    ``datanucleus.schema.autoCreateAll`` creates the metastore tables on first
    use, which is safe on Derby (on PostgreSQL the first ``CREATE TABLE`` was
    seen to hang, so the schema would have to be created beforehand).
    """
    endpoint = endpoint or Endpoint.from_environment()
    return {
        "spark.hadoop.javax.jdo.option.ConnectionURL": endpoint.jdbc_url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": CLIENT_DRIVER_CLASS,
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        # Hive retries a failed metastore call 10 times, 2 s apart, and Spark
        # calls it several times per statement, so a lost database stalled
        # each statement for minutes. One attempt fails the statement at once.
        "spark.hadoop.hive.hmshandler.retry.attempts": "1",
        # The Hive client loads the JDBC driver from the driver's class path;
        # spark.jars is not enough. Under spark-submit it must be given on the
        # command line, because the driver JVM is already running.
        "spark.driver.extraClassPath": str(client_jar()),
        "spark.sql.warehouse.dir": str(shared_warehouse_dir()),
    }


def apply_metastore_mode(settings: dict[str, str], mode: str | None = None) -> dict[str, str]:
    """Return ``settings`` with the metastore chosen by ``mode`` or ``MUSICBOX_METASTORE``.

    Parameters
    ----------
    settings : dict of str to str
        The project's Spark settings (the ``local`` target's).
    mode : str, optional
        ``embedded`` keeps the local target's embedded Derby metastore;
        ``shared`` uses the Derby network server of :func:`shared_settings`;
        ``external`` removes the metastore and warehouse settings so that the
        cluster's own ``hive-site.xml`` and ``spark-defaults.conf`` apply (EMR).
        Default: ``MUSICBOX_METASTORE``, else ``embedded``.

    Raises
    ------
    ConfigError
        When the mode is not one of the three.
    """
    mode = mode or os.environ.get(MODE_VARIABLE) or EMBEDDED
    if mode not in MODES:
        raise config.ConfigError(
            f"{MODE_VARIABLE}={mode!r} is not a metastore mode; choose one of {', '.join(MODES)}"
        )
    result = dict(settings)
    if mode == EMBEDDED:
        return result
    for key in METASTORE_KEYS:
        result.pop(key, None)
    if mode == SHARED:
        result.update(shared_settings())
    return result


def ping(endpoint: Endpoint | None = None, timeout: float = PING_TIMEOUT_SECONDS) -> bool:
    """Tell whether a Derby network server responds a DRDA ping on ``endpoint``."""
    endpoint = endpoint or Endpoint.from_environment()
    if not process.is_listening(endpoint.host, endpoint.port):
        return False
    command = [
        process.find_java(),
        "-cp",
        server_classpath(),
        SERVER_CLASS,
        "ping",
        "-h",
        endpoint.host,
        "-p",
        str(endpoint.port),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        logger.warning("Derby ping of %s timed out after %.0f s", endpoint, timeout)
        return False
    if completed.returncode != 0:
        logger.debug("Derby ping of %s failed: %s", endpoint, completed.stdout + completed.stderr)
    return completed.returncode == 0


def require_reachable(endpoint: Endpoint | None = None) -> None:
    """Raise ServerError naming the address when the shared metastore does not respond."""
    endpoint = endpoint or Endpoint.from_environment()
    if not ping(endpoint):
        raise process.ServerError(
            f"the shared metastore (Derby network server) at {endpoint} is not responding: "
            "start it with `musicbox metastore start`"
        )


def start(endpoint: Endpoint | None = None, timeout: float = START_TIMEOUT_SECONDS) -> int:
    """Start the Derby network server and wait until it responds a ping; return its pid.

    Raises
    ------
    ServerError
        When Java or the Derby jars are missing, the port is taken, or the
        server does not respond within ``timeout`` seconds.
    """
    endpoint = endpoint or Endpoint.from_environment()
    process.require_not_running(FILES)
    java = process.find_java()
    classpath = server_classpath()
    client_jar()
    process.require_free_port(endpoint.host, endpoint.port, "metastore")
    derby_home().mkdir(parents=True, exist_ok=True)
    command = [
        java,
        f"-Dderby.system.home={derby_home()}",
        # Derby writes its own log (derby.log) here, next to the server log.
        f"-Dderby.stream.error.file={FILES.directory / 'derby.log'}",
        "-cp",
        classpath,
        SERVER_CLASS,
        "start",
        "-h",
        endpoint.host,
        "-p",
        str(endpoint.port),
        # Java 17 deprecates the security manager that Derby installs by default.
        "-noSecurityManager",
    ]
    pid = process.spawn(FILES, command)
    process.wait_until_ready(
        FILES,
        pid,
        lambda: ping(endpoint),
        timeout=timeout,
        condition=f"responding a ping on {endpoint}",
    )
    logger.info("shared metastore responding on %s (database %s)", endpoint, derby_home())
    return pid


def stop() -> bool:
    """Stop the Derby network server; return False when it was not running."""
    return process.stop(FILES)


def status(endpoint: Endpoint | None = None) -> tuple[int | None, bool]:
    """Return the server's pid (None when not running from here) and whether it responds."""
    endpoint = endpoint or Endpoint.from_environment()
    return process.running_pid(FILES), ping(endpoint)
