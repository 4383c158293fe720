"""Fixtures that run the production layout on this machine, once per test session.

One data dir contains a shared Derby metastore, a Spark Thrift Server, the
golden fixture built with ``dbt build --target thrift`` and, when a test asks
for it, a Spark standalone cluster. Every server listens on 127.0.0.1 on a port
picked free at the start of the session, so the suite can run beside other
servers of the same machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from python_ml.servers.process import free_port
from tests.conftest import GOLDEN_DIR, run_dbt, run_musicbox

# Driver memory of every server and job of the stack: the golden fixture is
# tiny, and up to three JVMs run at once on a machine shared with the suite.
STACK_DRIVER_MEMORY = "1g"


@dataclass(frozen=True)
class Stack:
    """Environment of one metastore + Thrift server (+ cluster) set-up.

    Attributes
    ----------
    data_dir : Path
        ``MUSICBOX_DATA_DIR`` of every process of the stack.
    env : dict of str to str
        Extra environment: the ports and the driver memory.
    """

    data_dir: Path
    env: dict[str, str]

    @property
    def warehouse_dir(self) -> Path:
        """Warehouse that the Thrift server and submitted jobs write."""
        return self.data_dir / "servers" / "warehouse"

    @property
    def thrift_port(self) -> int:
        """Port of the Thrift server."""
        return int(self.env["MUSICBOX_THRIFT_PORT"])

    def musicbox(self, args: list[str], *, check: bool = True, **extra_env: str):
        """Run ``musicbox ARGS`` with the stack's environment."""
        return run_musicbox(args, self.data_dir, check=check, **{**self.env, **extra_env})

    def dbt(self, args: list[str], *, check: bool = True, **extra_env: str):
        """Run ``dbt ARGS`` with the stack's environment."""
        return run_dbt(args, self.data_dir, check=check, **{**self.env, **extra_env})


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the shared metastore and a Thrift server; stop both at the end of the session."""
    data_dir = tmp_path_factory.mktemp("stack")
    env = {
        "MUSICBOX_METASTORE_PORT": str(free_port()),
        "MUSICBOX_THRIFT_PORT": str(free_port()),
        "MUSICBOX_SPARK_MASTER_PORT": str(free_port()),
        "MUSICBOX_SPARK_MASTER_UI_PORT": str(free_port()),
        "MUSICBOX_SPARK_WORKER_UI_PORT": str(free_port()),
        "MUSICBOX_DRIVER_MEMORY": STACK_DRIVER_MEMORY,
        "MUSICBOX_REPORTS_DIR": str(data_dir / "reports"),
    }
    started = Stack(data_dir, env)
    try:
        started.musicbox(["metastore", "start"])
        started.musicbox(["thrift", "start"])
        yield started
    finally:
        # Stop in reverse order; each stop is a no-op for a server not running.
        for server in ("cluster", "thrift", "metastore"):
            started.musicbox([server, "stop"], check=False)


@pytest.fixture(scope="session")
def thrift_build(stack: Stack) -> Stack:
    """Land the golden fixture and build it with ``dbt build --target thrift``."""
    stack.musicbox(["land", str(GOLDEN_DIR / "raw")])
    stack.dbt(["build", "--target", "thrift", "--target-path", str(stack.data_dir / "target")])
    return stack


@pytest.fixture(scope="session")
def spark_cluster(thrift_build: Stack) -> Iterator[Stack]:
    """Start a standalone master and one 2-core worker beside the Thrift build."""
    thrift_build.musicbox(["cluster", "start", "--cores", "2", "--memory", "2g"])
    yield thrift_build
    thrift_build.musicbox(["cluster", "stop"], check=False)


def read_json(path: Path) -> dict:
    """Read one JSON file written by dbt or by training."""
    return json.loads(path.read_text(encoding="utf-8"))
