"""A Spark standalone cluster on 127.0.0.1 and ``spark-submit`` of ``musicbox`` to it.

The master and the worker are the installed pyspark's own
``org.apache.spark.deploy.master.Master`` and ``...worker.Worker`` classes,
started through ``bin/spark-class``. A submitted job runs the ``musicbox``
command line (``python_ml/submit.py``) in client mode, with the project's
Spark settings and the shared metastore of :mod:`python_ml.servers.metastore`,
so it reads the marts that a Thrift build wrote.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from python_ml import config
from python_ml.servers import metastore, process, thrift

logger = logging.getLogger(__name__)

MASTER_FILES = process.ServerFiles("spark-master")
WORKER_FILES = process.ServerFiles("spark-worker")
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
START_TIMEOUT_SECONDS = 120.0
DEFAULT_WORKER_MEMORY = "3g"
DEFAULT_EXECUTOR_MEMORY = "2g"


@dataclass(frozen=True)
class Ports:
    """TCP ports of the standalone cluster, all on 127.0.0.1.

    Attributes
    ----------
    master : int
        Master RPC port of ``spark://127.0.0.1:<port>``, ``MUSICBOX_SPARK_MASTER_PORT``
        (default 7077).
    master_ui : int
        Master web UI, ``MUSICBOX_SPARK_MASTER_UI_PORT`` (default 8080); its
        ``/json/`` page is the readiness check.
    worker_ui : int
        Worker web UI, ``MUSICBOX_SPARK_WORKER_UI_PORT`` (default 8081).
    """

    master: int = 7077
    master_ui: int = 8080
    worker_ui: int = 8081

    @classmethod
    def from_environment(cls) -> Ports:
        """Read the three ports from their environment variables."""
        defaults = cls()
        return cls(
            master=_port("MUSICBOX_SPARK_MASTER_PORT", defaults.master),
            master_ui=_port("MUSICBOX_SPARK_MASTER_UI_PORT", defaults.master_ui),
            worker_ui=_port("MUSICBOX_SPARK_WORKER_UI_PORT", defaults.worker_ui),
        )

    @property
    def master_url(self) -> str:
        """URL that ``spark-submit --master`` and the worker connect to."""
        return f"spark://{process.LOOPBACK}:{self.master}"

    @property
    def status_url(self) -> str:
        """JSON status page of the master web UI."""
        return f"http://{process.LOOPBACK}:{self.master_ui}/json/"


def _port(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise config.ConfigError(f"{variable}={text!r} is not a TCP port number (1-65535)")
    return int(text)


def master_status(ports: Ports, timeout: float = 5.0) -> dict[str, Any] | None:
    """Return the master's JSON status, or None when its web UI does not respond."""
    try:
        with urllib.request.urlopen(ports.status_url, timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def alive_workers(ports: Ports) -> list[dict[str, Any]]:
    """Return the workers that the master lists as ALIVE (empty when it does not respond)."""
    status = master_status(ports)
    if not status:
        return []
    return [worker for worker in status.get("workers", []) if worker.get("state") == "ALIVE"]


def _spark_class() -> str:
    path = thrift.spark_home() / "bin" / "spark-class"
    if not path.is_file():
        raise process.ServerError(f"spark-class not found at {path}: check SPARK_HOME")
    return str(path)


def start(
    ports: Ports | None = None,
    *,
    cores: int | None = None,
    memory: str = DEFAULT_WORKER_MEMORY,
    timeout: float = START_TIMEOUT_SECONDS,
) -> tuple[int, int]:
    """Start a master and one worker and wait until the worker is registered.

    Parameters
    ----------
    ports : Ports, optional
        Ports to use; by default from the environment.
    cores : int, optional
        Cores the worker offers; by default every core of the machine.
    memory : str
        Memory the worker offers to executors, in JVM notation (``3g``).
    timeout : float
        Seconds to wait for each of the two daemons.

    Returns
    -------
    tuple of int
        The pids of the master and the worker.

    Raises
    ------
    ServerError
        When Java is missing, a port is taken or a daemon does not come up.
    """
    ports = ports or Ports.from_environment()
    process.require_not_running(MASTER_FILES)
    process.require_not_running(WORKER_FILES)
    process.find_java()
    for port, server in (
        (ports.master, "Spark master"),
        (ports.master_ui, "Spark master web UI"),
        (ports.worker_ui, "Spark worker web UI"),
    ):
        process.require_free_port(process.LOOPBACK, port, server)
    environment = thrift.loopback_environment()
    master_command = [
        _spark_class(),
        MASTER_CLASS,
        "--host",
        process.LOOPBACK,
        "--port",
        str(ports.master),
        "--webui-port",
        str(ports.master_ui),
    ]
    master_pid = process.spawn(MASTER_FILES, master_command, env=environment)
    process.wait_until_ready(
        MASTER_FILES,
        master_pid,
        lambda: (master_status(ports) or {}).get("status") == "ALIVE",
        timeout=timeout,
        condition=f"status ALIVE at {ports.status_url}",
    )
    work_dir = WORKER_FILES.directory / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    worker_command = [
        _spark_class(),
        WORKER_CLASS,
        ports.master_url,
        "--host",
        process.LOOPBACK,
        "--cores",
        str(cores or os.cpu_count() or 1),
        "--memory",
        memory,
        "--webui-port",
        str(ports.worker_ui),
        "--work-dir",
        str(work_dir),
    ]
    try:
        worker_pid = process.spawn(WORKER_FILES, worker_command, env=environment)
        process.wait_until_ready(
            WORKER_FILES,
            worker_pid,
            lambda: bool(alive_workers(ports)),
            timeout=timeout,
            condition=f"a worker registered with {ports.master_url}",
        )
    except process.ServerError:
        process.stop(MASTER_FILES)
        raise
    logger.info("Spark standalone cluster ready at %s", ports.master_url)
    return master_pid, worker_pid


def stop() -> bool:
    """Stop the worker, then the master; return False when neither was running."""
    stopped_worker = process.stop(WORKER_FILES)
    stopped_master = process.stop(MASTER_FILES)
    return stopped_worker or stopped_master


def status(ports: Ports | None = None) -> dict[str, Any]:
    """Return the pids of the two daemons and the number of alive workers."""
    ports = ports or Ports.from_environment()
    return {
        "master_pid": process.running_pid(MASTER_FILES),
        "worker_pid": process.running_pid(WORKER_FILES),
        "master_responding": master_status(ports) is not None,
        "alive_workers": len(alive_workers(ports)),
    }


def submit_settings(executor_memory: str = DEFAULT_EXECUTOR_MEMORY) -> dict[str, str]:
    """Return the ``--conf`` settings of a submitted job: the project's, shared metastore.

    ``spark.master`` is left out (it comes from ``--master``), and the
    executors run the same Python as this process.
    """
    settings = metastore.apply_metastore_mode(config.spark_settings(), metastore.SHARED)
    settings.pop("spark.master", None)
    settings["spark.driver.host"] = process.LOOPBACK
    settings["spark.driver.bindAddress"] = process.LOOPBACK
    settings["spark.executor.memory"] = executor_memory
    settings["spark.pyspark.python"] = sys.executable
    settings["spark.pyspark.driver.python"] = sys.executable
    # Spark's own INFO lines would bury the job's log on the terminal; the
    # master and worker logs keep the details.
    settings["spark.log.level"] = "WARN"
    return settings


def submit_command(
    arguments: Sequence[str],
    *,
    master_url: str,
    executor_memory: str = DEFAULT_EXECUTOR_MEMORY,
) -> list[str]:
    """Return the ``spark-submit`` command that runs ``musicbox ARGUMENTS`` on ``master_url``."""
    settings = submit_settings(executor_memory)
    command = [
        str(thrift.spark_submit()),
        "--master",
        master_url,
        "--deploy-mode",
        "client",
        # The driver JVM is started by spark-submit, so its class path and
        # memory must be on the command line rather than in the session.
        "--driver-class-path",
        settings.pop("spark.driver.extraClassPath"),
        "--driver-memory",
        settings.pop("spark.driver.memory"),
    ]
    for key, value in sorted(settings.items()):
        command += ["--conf", f"{key}={value}"]
    command.append(str(config.project_dir() / "python_ml" / "submit.py"))
    command += list(arguments)
    return command


def submit(
    arguments: Sequence[str],
    *,
    master_url: str | None = None,
    executor_memory: str = DEFAULT_EXECUTOR_MEMORY,
) -> int:
    """Run ``musicbox ARGUMENTS`` through ``spark-submit`` and return its exit code.

    Parameters
    ----------
    arguments : sequence of str
        The ``musicbox`` command line to run, such as ``["train", "--seed", "7"]``.
    master_url : str, optional
        Spark master; by default the local standalone cluster. ``local[2]``
        runs the same submit command without the cluster.
    executor_memory : str
        Memory of each executor, in JVM notation.

    Raises
    ------
    ServerError
        When the shared metastore does not respond, or the master is the local
        cluster and it has no alive worker.
    """
    ports = Ports.from_environment()
    master_url = master_url or ports.master_url
    metastore.require_reachable()
    if master_url == ports.master_url and not alive_workers(ports):
        raise process.ServerError(
            f"no alive worker at {master_url} (status page {ports.status_url}): start the "
            "cluster with `musicbox cluster start`"
        )
    command = submit_command(arguments, master_url=master_url, executor_memory=executor_memory)
    environment = dict(os.environ)
    environment.update(thrift.loopback_environment())
    # get_spark() inside the job applies the same shared metastore as the
    # --conf settings above; without it the project's embedded one would win.
    environment[metastore.MODE_VARIABLE] = metastore.SHARED
    environment["MUSICBOX_DATA_DIR"] = str(config.data_dir())
    environment["MUSICBOX_PROJECT_DIR"] = str(config.project_dir())
    logger.info("submitting musicbox %s to %s", " ".join(arguments), master_url)
    completed = subprocess.run(command, env=environment, check=False)
    if completed.returncode != 0:
        logger.error("spark-submit exited with %d", completed.returncode)
    return completed.returncode
