"""Fixtures shared by the whole suite: dbt builds of the golden fixture and one Spark session.

Every dbt build runs in a subprocess with its own ``MUSICBOX_DATA_DIR``, so
each has a private warehouse and embedded Derby metastore. The ``spark``
fixture attaches this process to the golden build's metastore, once the dbt
process has released it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
GOLDEN_DIR = PROJECT_DIR / "tests" / "fixtures" / "golden-small"
BIN_DIR = Path(sys.executable).parent


def project_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment for a project command writing under ``data_dir``."""
    env = dict(os.environ)
    env["MUSICBOX_DATA_DIR"] = str(data_dir)
    env["MUSICBOX_PROJECT_DIR"] = str(PROJECT_DIR)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.update(extra)
    return env


def run_command(
    args: list[str], data_dir: Path, *, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run a project command from the project root; on failure show its output tail."""
    completed = subprocess.run(
        args,
        cwd=PROJECT_DIR,
        env=project_env(data_dir, **extra_env),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-6000:]
        pytest.fail(f"{' '.join(args)} exited with {completed.returncode}:\n{output}")
    return completed


def run_dbt(
    args: list[str], data_dir: Path, *, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` with the project's profiles in a subprocess."""
    command = [str(BIN_DIR / "dbt"), *args, "--profiles-dir", str(PROJECT_DIR)]
    return run_command(command, data_dir, check=check, **extra_env)


def run_musicbox(
    args: list[str], data_dir: Path, *, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``musicbox ARGS`` in a subprocess."""
    return run_command([str(BIN_DIR / "musicbox"), *args], data_dir, check=check, **extra_env)


BUILD_OUTPUT_FILE = "dbt-build-output.txt"


def build_golden(data_dir: Path, target: str = "local") -> Path:
    """Land the golden fixture into ``data_dir`` and run ``dbt build`` on it.

    The build's standard output and error are kept in ``BUILD_OUTPUT_FILE``
    inside ``data_dir``.
    """
    run_musicbox(["land", str(GOLDEN_DIR / "raw")], data_dir)
    completed = run_dbt(["build", "--target", target], data_dir)
    (data_dir / BUILD_OUTPUT_FILE).write_text(completed.stdout + completed.stderr, "utf-8")
    return data_dir


@pytest.fixture(scope="session")
def golden_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the data dir of a finished local ``dbt build`` of the golden fixture."""
    return build_golden(tmp_path_factory.mktemp("golden-local"))


@pytest.fixture(scope="session")
def spark(golden_build: Path):
    """Return this process's SparkSession, attached to the golden build's metastore."""
    os.environ["MUSICBOX_DATA_DIR"] = str(golden_build)
    from python_ml.spark import get_spark

    session = get_spark("music_box_tests", launched_by_submit=False)
    yield session
    session.stop()
