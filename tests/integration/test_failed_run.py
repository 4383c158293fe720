"""A failing rebuild keeps the last good table; a good rebuild replaces it.

A rebuild also clears the unregistered folder that an interrupted one leaves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from tests.conftest import GOLDEN_DIR, run_dbt, run_musicbox

pytestmark = pytest.mark.slow

MODEL = "int_users_sampled"


def table_dir(data_dir: Path, name: str) -> Path:
    return data_dir / "spark" / "warehouse" / "music_box_intermediate.db" / name


def row_count(data_dir: Path) -> int:
    return ds.dataset(table_dir(data_dir, MODEL), format="parquet").count_rows()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("failed-run")
    run_musicbox(["land", str(GOLDEN_DIR / "raw")], data_dir)
    run_dbt(["run", "--select", f"+{MODEL}"], data_dir)
    return data_dir


def test_failed_rebuild_keeps_last_good_table(built: Path) -> None:
    before = row_count(built)
    # raise_error() makes the select fail while Spark executes it, after
    # compilation succeeded: the case where a drop-then-create would lose data.
    failing = run_dbt(
        ["run", "--select", MODEL, "--vars", "{user_sample_ratio: \"raise_error('injected')\"}"],
        built,
        check=False,
    )

    assert failing.returncode != 0
    assert f"Error in model {MODEL}" in failing.stdout or "ERROR" in failing.stdout
    assert "injected" in failing.stdout + failing.stderr
    assert row_count(built) == before
    # Spark may leave the failed table's empty folder behind; the next run
    # builds into it. No data file of the failed attempt may remain.
    assert not list(table_dir(built, f"{MODEL}__dbt_new").rglob("part-*"))
    assert not table_dir(built, f"{MODEL}__dbt_backup").exists()


def test_good_rebuild_replaces_table(built: Path) -> None:
    everyone = row_count(built)

    run_dbt(["run", "--select", MODEL, "--vars", "{user_sample_ratio: 0.0}"], built)
    nobody_in_sample = ds.dataset(table_dir(built, MODEL), format="parquet").to_table()

    assert nobody_in_sample.num_rows == everyone
    assert not any(nobody_in_sample.column("is_in_sample").to_pylist())
    assert not table_dir(built, f"{MODEL}__dbt_backup").exists()


def test_rebuild_clears_orphaned_folder(built: Path) -> None:
    before = row_count(built)
    # An interrupted build that wrote the new table's files but never
    # registered it leaves a folder that Spark will not create a table over.
    orphan = table_dir(built, f"{MODEL}__dbt_new")
    orphan.mkdir(parents=True, exist_ok=True)
    part = next(table_dir(built, MODEL).glob("part-*"))
    shutil.copy(part, orphan / part.name)

    run_dbt(["run", "--select", MODEL], built)

    assert row_count(built) == before
    assert not orphan.exists()
    assert not table_dir(built, f"{MODEL}__dbt_sweep").exists()


def test_first_build_clears_folder_without_table(built: Path) -> None:
    # The fixture built int_users_sampled and its parents only, so this
    # sibling has no table yet. A folder under its name contains a stray file.
    model = "int_users_bot_flagged"
    folder = table_dir(built, model)
    folder.mkdir(parents=True, exist_ok=True)
    stray = folder / "part-stray.parquet"
    shutil.copy(next(table_dir(built, MODEL).glob("part-*")), stray)

    run_dbt(["run", "--select", model], built)

    assert not stray.exists()
    assert list(folder.glob("part-*"))


def test_relative_landing_path_rejected(built: Path) -> None:
    before = row_count(built)

    failing = run_dbt(
        ["run", "--select", MODEL, "--vars", "{landing_path: data/landing}"], built, check=False
    )

    assert failing.returncode != 0
    assert "landing_path 'data/landing' is relative" in failing.stdout
    assert "MUSICBOX_DATA_DIR" in failing.stdout
    assert row_count(built) == before
