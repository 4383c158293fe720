"""``musicbox metastore|thrift|cluster``: start, stop and check the local servers.

Together they reproduce the production layout on one machine: a shared Hive
metastore (Derby network server), a Spark Thrift Server that dbt's ``thrift``
target builds through, and a Spark standalone cluster that training is
submitted to.
"""

from __future__ import annotations

import argparse
import logging

from python_ml import config
from python_ml.servers import cluster, metastore, process, thrift

logger = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "status")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_metastore(subparsers)
    _register_thrift(subparsers)
    _register_cluster(subparsers)


def _register_metastore(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metastore",
        help="start, stop or check the shared Hive metastore (Derby network server)",
        description=(
            "Manage the Derby network server that holds the Hive metastore shared by the "
            "Thrift server, dbt's thrift target and jobs submitted to the cluster. Its "
            "database, pid file and log are under $MUSICBOX_DATA_DIR/servers/metastore/."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="TCP port on 127.0.0.1 (default: MUSICBOX_METASTORE_PORT, else 1527)",
    )
    parser.set_defaults(func=run_metastore)


def _register_thrift(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "thrift",
        help="start, stop or check the Spark Thrift Server of dbt's thrift target",
        description=(
            "Manage a Spark Thrift Server bound to 127.0.0.1, with the project's Spark "
            "settings and the shared metastore (start that first with `musicbox metastore "
            "start`). `start` returns once the server responds a query. Its pid file and log "
            "are under $MUSICBOX_DATA_DIR/servers/thrift/; tables go to "
            "$MUSICBOX_DATA_DIR/servers/warehouse/."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="TCP port on 127.0.0.1 (default: MUSICBOX_THRIFT_PORT, else 10000)",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master URL of the server, such as spark://127.0.0.1:7077 "
        "(default: spark.master of the project's settings)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=thrift.START_TIMEOUT_SECONDS,
        help="seconds to wait for the server to respond to a query after starting it",
    )
    parser.set_defaults(func=run_thrift)


def _register_cluster(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster",
        help="start, stop or check a Spark standalone cluster, or submit musicbox to it",
        description=(
            "Manage a Spark standalone master and worker on 127.0.0.1 (ports from "
            "MUSICBOX_SPARK_MASTER_PORT, MUSICBOX_SPARK_MASTER_UI_PORT and "
            "MUSICBOX_SPARK_WORKER_UI_PORT, default 7077, 8080 and 8081). `submit` runs "
            "the musicbox command given after `--` through spark-submit, with the shared "
            "metastore: `musicbox cluster submit -- train`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _register_cluster_actions(parser)
    parser.set_defaults(func=run_cluster)


def _register_cluster_actions(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser(
        "start",
        help="start the master and one worker",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    start.add_argument(
        "--cores", type=int, default=None, help="cores the worker offers (default: all)"
    )
    start.add_argument(
        "--memory",
        default=cluster.DEFAULT_WORKER_MEMORY,
        help="memory the worker offers to executors, in JVM notation",
    )
    actions.add_parser("stop", help="stop the worker and the master")
    actions.add_parser("status", help="check that the master responds and has an alive worker")
    submit = actions.add_parser(
        "submit",
        help="run a musicbox command line through spark-submit",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    submit.add_argument(
        "--executor-memory",
        default=cluster.DEFAULT_EXECUTOR_MEMORY,
        help="memory of each executor, in JVM notation",
    )
    submit.add_argument(
        "--master",
        default=None,
        help="Spark master URL (default: the local cluster; local[2] runs the same submit "
        "command without it)",
    )
    submit.add_argument(
        "musicbox_args",
        nargs=argparse.REMAINDER,
        metavar="-- ARGS",
        help="the musicbox command line to run, after --",
    )


def _report(name: str, pid: int | None, problem: str | None, address: str) -> int:
    where = f"pid {pid}" if pid is not None else "no pid file"
    if problem is None:
        logger.info("%s: responding on %s (%s)", name, address, where)
        return 0
    logger.error("%s: not responding on %s (%s): %s", name, address, where, problem)
    return 1


def run_metastore(args: argparse.Namespace) -> int:
    endpoint = metastore.Endpoint.from_environment()
    if args.port is not None:
        endpoint = metastore.Endpoint(endpoint.host, args.port)
    try:
        if args.action == "start":
            metastore.start(endpoint)
        elif args.action == "stop":
            if not metastore.stop():
                logger.info("metastore: not running")
        else:
            pid, responding = metastore.status(endpoint)
            problem = None if responding else "no respond to a Derby ping"
            return _report("metastore", pid, problem, str(endpoint))
    except (process.ServerError, config.ConfigError) as error:
        logger.error("%s", error)
        return 1
    return 0


def run_thrift(args: argparse.Namespace) -> int:
    endpoint = thrift.Endpoint.from_environment()
    if args.port is not None:
        endpoint = thrift.Endpoint(endpoint.host, args.port, endpoint.user)
    try:
        if args.action == "start":
            thrift.start(endpoint, master=args.master, timeout=args.timeout)
        elif args.action == "stop":
            if not thrift.stop():
                logger.info("thrift: not running")
        else:
            pid, problem = thrift.status(endpoint)
            return _report("thrift", pid, problem, str(endpoint))
    except (process.ServerError, config.ConfigError) as error:
        logger.error("%s", error)
        return 1
    return 0


def run_cluster(args: argparse.Namespace) -> int:
    try:
        if args.action == "start":
            cluster.start(cores=args.cores, memory=args.memory)
        elif args.action == "stop":
            if not cluster.stop():
                logger.info("cluster: not running")
        elif args.action == "status":
            ports = cluster.Ports.from_environment()
            state = cluster.status(ports)
            problem = None
            if not state["master_responding"]:
                problem = f"no respond from the master web UI at {ports.status_url}"
            elif not state["alive_workers"]:
                problem = "the master has no alive worker"
            logger.info(
                "cluster: master pid %s, worker pid %s, %d alive worker(s)",
                state["master_pid"],
                state["worker_pid"],
                state["alive_workers"],
            )
            return _report("cluster", state["master_pid"], problem, ports.master_url)
        else:
            arguments = list(args.musicbox_args)
            if arguments[:1] == ["--"]:
                arguments = arguments[1:]
            if not arguments:
                logger.error("submit needs a musicbox command line after --, such as -- train")
                return 2
            return cluster.submit(
                arguments, master_url=args.master, executor_memory=args.executor_memory
            )
    except (process.ServerError, config.ConfigError) as error:
        logger.error("%s", error)
        return 1
    return 0
