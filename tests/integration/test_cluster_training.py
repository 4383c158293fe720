"""``musicbox train`` submitted to a standalone cluster reads the Thrift build's marts.

The job reaches the marts through the shared metastore, and the same seed
gives the same metrics as an in-process ``local[2]`` run on the same marts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from python_ml.servers import thrift
from tests.integration.conftest import Stack, read_json

pytestmark = [pytest.mark.thrift, pytest.mark.slow]

# The recommender alone keeps the two runs to about two minutes each; ALS is
# the iterative, checkpointing part that a cluster could change.
TRAIN_ARGS = [
    "train",
    "recommender",
    "--seed",
    "7",
    "--grid",
    "quick",
    "--als-grid",
    "quick",
    "--folds",
    "2",
    "--top-n",
    "5",
]
# Keys whose values differ between two runs by design (names, paths, clocks), not by result.
RUN_SPECIFIC_KEYS = {
    "run_id",
    "created_at",
    "timings",
    "options",
    "ground_truth",
    "model_path",
    "plain_model_path",
    # Only the cluster run writes its predictions back.
    "table",
}


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted path, value)`` for every scalar of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in RUN_SPECIFIC_KEYS:
                continue
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def differences(expected: dict, actual: dict) -> list[str]:
    """Return one message per leaf that differs (floats within 1e-9 relative)."""
    expected_leaves = dict(leaves(expected))
    actual_leaves = dict(leaves(actual))
    problems = []
    for path in sorted(set(expected_leaves) | set(actual_leaves)):
        if path not in actual_leaves or path not in expected_leaves:
            problems.append(f"{path} is only in one run")
            continue
        wanted, got = expected_leaves[path], actual_leaves[path]
        if isinstance(wanted, float) and isinstance(got, float):
            if not math.isclose(wanted, got, rel_tol=1e-9, abs_tol=1e-12):
                problems.append(f"{path}: local {wanted!r}, cluster {got!r}")
        elif wanted != got:
            problems.append(f"{path}: local {wanted!r}, cluster {got!r}")
    return problems


@pytest.fixture(scope="module")
def cluster_run(spark_cluster: Stack) -> Path:
    """Run training through spark-submit on the cluster; return its metrics file."""
    reports = spark_cluster.data_dir / "reports"
    spark_cluster.musicbox(
        [
            "cluster",
            "submit",
            "--executor-memory",
            "1g",
            "--",
            *TRAIN_ARGS,
            "--run-id",
            "cluster",
            "--reports-dir",
            str(reports),
        ],
    )
    return reports / "cluster" / "metrics.json"


@pytest.fixture(scope="module")
def local_run(spark_cluster: Stack) -> Path:
    """Run the same training in-process on ``local[2]`` against the shared metastore."""
    reports = spark_cluster.data_dir / "reports"
    spark_cluster.musicbox(
        [*TRAIN_ARGS, "--run-id", "local", "--reports-dir", str(reports), "--no-write-back"],
        MUSICBOX_METASTORE="shared",
        MUSICBOX_SPARK_MASTER="local[2]",
    )
    return reports / "local" / "metrics.json"


def test_cluster_run_reads_thrift_marts(cluster_run: Path) -> None:
    metrics = read_json(cluster_run)
    assert metrics["recommender"]["data"]["pairs"] == 199
    assert metrics["recommender"]["rmse"]["als"] > 0.0


def test_cluster_run_matches_local_run(cluster_run: Path, local_run: Path) -> None:
    cluster_metrics = read_json(cluster_run)
    local_metrics = read_json(local_run)
    assert cluster_metrics["seed"] == local_metrics["seed"] == 7
    problems = differences(local_metrics, cluster_metrics)
    assert not problems, "\n".join(problems[:30])


def test_cluster_outputs_visible_through_thrift(spark_cluster: Stack, cluster_run: Path) -> None:
    # The executors wrote the predictions into the shared warehouse and
    # metastore, so the Thrift server (another JVM) reads them at once.
    rows = thrift.run_query(
        "select run_id, count(*) from music_box_ml.song_recommendations group by run_id",
        thrift.Endpoint(port=spark_cluster.thrift_port),
    )
    counts = dict(rows)
    assert counts.get("cluster", 0) > 0, rows


def test_submit_needs_metastore(spark_cluster: Stack) -> None:
    completed = spark_cluster.musicbox(
        ["cluster", "submit", "--", "train", "recommender"],
        check=False,
        MUSICBOX_METASTORE_PORT="1",
    )
    assert completed.returncode == 1
    assert "shared metastore (Derby network server) at 127.0.0.1:1 is not responding" in (
        completed.stderr
    )
