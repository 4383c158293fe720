"""``dbt build --target thrift`` through a real Spark Thrift Server and a shared metastore.

test_golden_marts.py compares the marts of this build with the golden
fixture. The tests here check what is particular to the Thrift path; the
last ones stop the metastore and the Thrift server on purpose, and each
restores what it stopped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from python_ml.servers import thrift
from python_ml.servers.process import ServerError, free_port
from tests.conftest import BIN_DIR, PROJECT_DIR, project_env
from tests.integration.conftest import Stack, read_json

PROBE_MODEL = "model.music_box.probe_table"

pytestmark = [pytest.mark.thrift, pytest.mark.slow]


def query(stack: Stack, sql: str) -> list[tuple]:
    """Run one statement on the stack's Thrift server."""
    return thrift.run_query(sql, thrift.Endpoint(port=stack.thrift_port))


def test_thrift_tables_in_shared_metastore(thrift_build: Stack) -> None:
    tables = {row[1] for row in query(thrift_build, "show tables in music_box_marts")}
    for mart in ("churn_features", "churn_labels", "user_song_ratings", "fct_events"):
        assert mart in tables
    assert not [name for name in tables if name.endswith(("__dbt_new", "__dbt_backup"))]
    location = dict(
        (row[0], row[1])
        for row in query(thrift_build, "describe formatted music_box_marts.churn_labels")
    )["Location"]
    assert location.endswith("servers/warehouse/music_box_marts.db/churn_labels")


def test_thrift_seeds_keep_text_cells(thrift_build: Stack) -> None:
    # Session seeds once wrote empty cells as the text 'None'; no seed cell here
    # may be NULL or 'None' on the thrift path either.
    rows = query(
        thrift_build,
        "select event_type, rating_weight, description from music_box_reference.event_types",
    )
    assert sorted(row[0] for row in rows) == ["download", "play", "search"]
    for event_type, weight, description in rows:
        assert weight is not None, event_type
        assert description not in (None, "", "None"), event_type
    weights = {row[0]: row[1] for row in rows}
    assert weights == {"play": 1.0, "download": 2.0, "search": 0.0}


def test_thrift_dbt_sessions_run_without_ansi(thrift_build: Stack) -> None:
    # dbt-spark turns ANSI mode off on every session it opens, so an invalid
    # cast in a model yields NULL; the parsing rules check text patterns and
    # use try_cast instead of relying on either behaviour.
    completed = thrift_build.dbt(
        [
            "show",
            "--target",
            "thrift",
            "--inline",
            "select cast('12x' as bigint) as uid",
            "--output",
            "json",
            "--log-format",
            "json",
            "--quiet",
            "--target-path",
            str(thrift_build.data_dir / "target-show"),
        ],
    )
    previews = [
        json.loads(json.loads(line)["data"]["preview"])
        for line in completed.stdout.splitlines()
        if '"preview"' in line
    ]
    assert previews == [[{"uid": None}]]
    # A session opened without dbt keeps Spark 4's default (ANSI on) and raises.
    with pytest.raises(ServerError, match="CAST_INVALID_INPUT"):
        query(thrift_build, "select cast('12x' as bigint) as uid")


def _probe_project(tmp_path: Path, body: str) -> Path:
    """Copy the dbt project to ``tmp_path`` with one extra model ``probe_table``."""
    project = tmp_path / "project"
    if not project.exists():
        for name in ("dbt_project.yml", "profiles.yml"):
            project.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_DIR / name, project / name)
        for folder in ("macros", "models", "seeds"):
            shutil.copytree(PROJECT_DIR / folder, project / folder)
    (project / "models" / "marts" / "probe_table.sql").write_text(body, encoding="utf-8")
    return project


def _run_probe(stack: Stack, project: Path, *, check: bool):
    return stack.dbt(
        [
            "run",
            "--target",
            "thrift",
            "--select",
            "probe_table",
            "--project-dir",
            str(project),
            "--target-path",
            str(project / "target"),
        ],
        check=check,
    )


def _model_results(project: Path) -> list[dict]:
    """Return the run results of the probe model, leaving out the on-run-start hook."""
    results = read_json(project / "target" / "run_results.json")["results"]
    return [result for result in results if result["unique_id"] == PROBE_MODEL]


def test_thrift_failing_model_keeps_old_table(thrift_build: Stack, tmp_path: Path) -> None:
    project = _probe_project(tmp_path, "select 1 as probe_value\n")
    _run_probe(thrift_build, project, check=True)
    # raise_error makes Spark fail the statement, as a runtime error in a model would.
    _probe_project(tmp_path, "select raise_error('probe failure') as probe_value\n")
    completed = _run_probe(thrift_build, project, check=False)
    assert completed.returncode == 1, completed.stdout[-3000:]
    results = _model_results(project)
    assert [result["status"] for result in results] == ["error"]
    assert "probe failure" in results[0]["message"]
    assert query(thrift_build, "select probe_value from music_box_marts.probe_table") == [(1,)]
    tables = {row[1] for row in query(thrift_build, "show tables in music_box_marts")}
    assert "probe_table__dbt_new" not in tables


def test_dbt_fails_fast_without_server(thrift_build: Stack) -> None:
    port = free_port()
    completed = thrift_build.dbt(
        [
            "run",
            "--target",
            "thrift",
            "--select",
            "churn_labels",
            "--target-path",
            str(thrift_build.data_dir / "target-down"),
        ],
        check=False,
        MUSICBOX_THRIFT_PORT=str(port),
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"127.0.0.1', {port}" in output or f"127.0.0.1:{port}" in output, output[-3000:]
    assert "Retrying" not in output


def test_musicbox_reports_unreachable_server(thrift_build: Stack) -> None:
    port = free_port()
    completed = thrift_build.musicbox(
        ["thrift", "status"], check=False, MUSICBOX_THRIFT_PORT=str(port)
    )
    assert completed.returncode == 1
    assert f"127.0.0.1:{port}" in completed.stderr


def test_thrift_start_rejects_running_server(thrift_build: Stack) -> None:
    completed = thrift_build.musicbox(["thrift", "start"], check=False)
    assert completed.returncode == 1
    assert "already running" in completed.stderr


def test_thrift_start_rejects_taken_port(thrift_build: Stack, tmp_path: Path) -> None:
    # A fresh data dir has no pid file, so only the port check can stop it.
    taken = thrift_build.env["MUSICBOX_METASTORE_PORT"]
    completed = thrift_build.musicbox(
        ["thrift", "start"],
        check=False,
        MUSICBOX_THRIFT_PORT=taken,
        MUSICBOX_DATA_DIR=str(tmp_path),
    )
    assert completed.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already in use" in completed.stderr


def test_thrift_start_without_java(thrift_build: Stack, tmp_path: Path) -> None:
    completed = thrift_build.musicbox(
        ["thrift", "start"],
        check=False,
        PATH=str(BIN_DIR),
        JAVA_HOME="",
        MUSICBOX_DATA_DIR=str(tmp_path),
    )
    assert completed.returncode == 1
    assert "Java not found" in completed.stderr


def _wait_for_path(path: Path, process: subprocess.Popen, attempts: int = 600) -> None:
    for _ in range(attempts):
        if path.exists():
            return
        if process.poll() is not None:
            pytest.fail(f"dbt exited with {process.returncode} before {path} appeared")
        time.sleep(0.5)
    pytest.fail(f"{path} did not appear")


def test_metastore_down_leaves_no_partial_table(thrift_build: Stack, tmp_path: Path) -> None:
    project = _probe_project(tmp_path, "select 2 as probe_value\n")
    _run_probe(thrift_build, project, check=True)
    # The task sleeps while it writes, so the metastore can be stopped after
    # the files of probe_table__dbt_new exist and before they are registered.
    _probe_project(
        tmp_path,
        "select reflect('java.lang.Thread', 'sleep', cast(20000 as bigint)) as slept,"
        " 3 as probe_value\n",
    )
    marts_dir = thrift_build.warehouse_dir / "music_box_marts.db"
    command = [
        str(BIN_DIR / "dbt"),
        "run",
        "--target",
        "thrift",
        "--select",
        "probe_table",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(project / "target"),
    ]
    build = subprocess.Popen(
        command,
        cwd=project,
        env=project_env(thrift_build.data_dir, **thrift_build.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_path(marts_dir / "probe_table__dbt_new" / "_temporary", build)
        thrift_build.musicbox(["metastore", "stop"])
        assert build.wait(timeout=600) == 1
        results = _model_results(project)
        assert [result["status"] for result in results] == ["error"]

        status = thrift_build.musicbox(["thrift", "status"], check=False)
        assert status.returncode == 1
        metastore_port = thrift_build.env["MUSICBOX_METASTORE_PORT"]
        assert f"shared metastore at 127.0.0.1:{metastore_port} is not responding" in (
            status.stderr
        )
        refused = _run_probe(thrift_build, project, check=False)
        assert refused.returncode != 0
        # Spark reports the lost metastore either way, depending on whether
        # its connection pool still held a connection to Derby.
        assert (
            "SCHEMA_NOT_FOUND" in refused.stdout
            or "Error connecting to server 127.0.0.1" in refused.stdout
        ), refused.stdout[-3000:]
    finally:
        if build.poll() is None:
            build.kill()
        thrift_build.musicbox(["metastore", "start"])

    tables = {row[1] for row in query(thrift_build, "show tables in music_box_marts")}
    assert not {name for name in tables if name.startswith("probe_table__")}
    assert query(thrift_build, "select probe_value from music_box_marts.probe_table") == [(2,)]
    # The next build removes the unregistered files and succeeds.
    _probe_project(tmp_path, "select 4 as probe_value\n")
    _run_probe(thrift_build, project, check=True)
    assert query(thrift_build, "select probe_value from music_box_marts.probe_table") == [(4,)]
    leftovers = sorted(path.name for path in marts_dir.iterdir() if "__dbt_" in path.name)
    assert leftovers == []
