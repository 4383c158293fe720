"""``dbt docs generate`` on both targets, and the served docs site's lineage graph in Chromium.

The catalog must list every model with its columns and their types. The
browser test serves the thrift target's docs with ``dbt docs serve``, opens
the lineage graph from the overview page as a reader would, and checks that
the raw log sources, the marts and the training exposures are drawn in it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from python_ml.servers.process import free_port
from tests.conftest import BIN_DIR, GOLDEN_DIR, PROJECT_DIR, project_env, run_dbt, run_musicbox
from tests.integration.conftest import Stack, read_json

LINEAGE_SCREENSHOT = PROJECT_DIR / "docs" / "images" / "lineage.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MARTS = ("fct_events", "churn_labels", "churn_features", "user_song_ratings", "dim_songs")
SOURCES = ("play_logs", "download_logs", "search_logs")
EXPOSURES = ("churn_models", "song_recommender")

pytestmark = pytest.mark.slow


def catalog_problems(manifest: dict, catalog: dict) -> list[str]:
    """Return one message per model or source missing from the catalog or its columns."""
    problems = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or node["config"]["materialized"] == "ephemeral":
            continue
        entry = catalog["nodes"].get(unique_id)
        if entry is None:
            problems.append(f"{unique_id} is missing from the catalog")
            continue
        columns = entry["columns"]
        if not columns:
            problems.append(f"{unique_id} has no columns in the catalog")
        untyped = sorted(name for name, column in columns.items() if not column.get("type"))
        if untyped:
            problems.append(f"{unique_id} has columns without a type: {untyped}")
        cataloged = {name.lower() for name in columns}
        undocumented = sorted(set(node["columns"]) - cataloged)
        if undocumented:
            problems.append(f"{unique_id} documents columns the table lacks: {undocumented}")
    for unique_id, source in manifest["sources"].items():
        # The ml source contains training outputs, which exist only after a run.
        if source["source_name"] != "app_logs":
            continue
        entry = catalog["sources"].get(unique_id)
        if entry is None or not entry["columns"]:
            problems.append(f"{unique_id} is missing from the catalog or has no columns")
    return problems


def generate_docs(target: str, data_dir: Path, target_path: Path, **extra_env: str) -> None:
    """Run ``dbt docs generate`` for ``target`` into ``target_path``."""
    run_dbt(
        ["docs", "generate", "--target", target, "--target-path", str(target_path)],
        data_dir,
        **extra_env,
    )


@pytest.fixture(scope="module")
def thrift_docs(thrift_build: Stack) -> Path:
    """Return the target folder of ``dbt docs generate --target thrift`` on the golden build."""
    target_path = thrift_build.data_dir / "docs-target"
    generate_docs("thrift", thrift_build.data_dir, target_path, **thrift_build.env)
    return target_path


@pytest.mark.thrift
def test_thrift_catalog_lists_every_model(thrift_docs: Path) -> None:
    manifest = read_json(thrift_docs / "manifest.json")
    catalog = read_json(thrift_docs / "catalog.json")
    assert not catalog.get("errors"), catalog.get("errors")
    problems = catalog_problems(manifest, catalog)
    assert not problems, "\n".join(problems)
    marts_columns = catalog["nodes"]["model.music_box.churn_labels"]["columns"]
    # Spark reports a 64-bit integer as bigint or long, depending on the command.
    assert marts_columns["user_id"]["type"] in ("bigint", "long")
    assert marts_columns["is_churned"]["type"] == "boolean"


def test_local_catalog_lists_every_model(tmp_path: Path) -> None:
    # `--empty` builds every model with no rows: the catalog needs the tables
    # and their columns, not the data, and the golden build's embedded
    # metastore may be held by the suite's own Spark session.
    run_musicbox(["land", str(GOLDEN_DIR / "raw")], tmp_path)
    run_dbt(
        [
            "build",
            "--empty",
            "--exclude-resource-type",
            "test",
            "unit_test",
            "--target",
            "local",
            "--target-path",
            str(tmp_path / "target"),
        ],
        tmp_path,
    )
    generate_docs("local", tmp_path, tmp_path / "target")
    manifest = read_json(tmp_path / "target" / "manifest.json")
    catalog = read_json(tmp_path / "target" / "catalog.json")
    assert not catalog.get("errors"), catalog.get("errors")
    problems = catalog_problems(manifest, catalog)
    assert not problems, "\n".join(problems)


def _wait_for_http(url: str, server: subprocess.Popen, attempts: int = 120) -> None:
    for _ in range(attempts):
        if server.poll() is not None:
            pytest.fail(f"dbt docs serve exited with {server.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    pytest.fail(f"dbt docs serve did not respond at {url}")


@pytest.fixture
def docs_url(thrift_docs: Path, thrift_build: Stack) -> Iterator[str]:
    """Serve the thrift docs with ``dbt docs serve`` on a free loopback port."""
    port = free_port()
    command = [
        str(BIN_DIR / "dbt"),
        "docs",
        "serve",
        "--target-path",
        str(thrift_docs),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
    ]
    server = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=project_env(thrift_build.data_dir, **thrift_build.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser() -> Iterator[object]:
    """Start headless Chromium through Debian's chromedriver with an empty profile."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            "chromium and chromium-driver are not installed: run scripts/install_system_packages.sh"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="music-box-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=2200,1300",
    ):
        options.add_argument(argument)
    # An explicit driver path keeps Selenium Manager from looking for one online.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Visible nodes of the lineage graph, read from the page's Cytoscape instance.
GRAPH_NODES_SCRIPT = """
const container = document.querySelector('#cy');
if (!container || !container._cyreg || !container._cyreg.cy) { return null; }
return container._cyreg.cy.nodes(':visible').map(
    node => [node.data('unique_id'), node.data('resource_type'), node.data('label')]
);
"""


@pytest.mark.thrift
@pytest.mark.browser
def test_lineage_graph_shows_sources_marts_exposures(docs_url: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(docs_url + "#!/overview")
    wait = WebDriverWait(browser, 60)
    launcher = wait.until(
        expected_conditions.element_to_be_clickable(
            (By.CSS_SELECTOR, "a[title='View Lineage Graph']")
        )
    )
    launcher.click()
    nodes = wait.until(lambda driver: driver.execute_script(GRAPH_NODES_SCRIPT) or None)
    wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "#cy canvas")))
    # Let the layout settle before the screenshot.
    time.sleep(2)
    LINEAGE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(LINEAGE_SCREENSHOT))

    drawn = {unique_id: (resource_type, label) for unique_id, resource_type, label in nodes}
    for source in SOURCES:
        unique_id = f"source.music_box.app_logs.{source}"
        assert unique_id in drawn, f"source {source} missing from the lineage graph"
        assert drawn[unique_id][0] == "source"
    for mart in MARTS:
        unique_id = f"model.music_box.{mart}"
        assert unique_id in drawn, f"mart {mart} missing from the lineage graph"
    for exposure in EXPOSURES:
        unique_id = f"exposure.music_box.{exposure}"
        assert unique_id in drawn, f"exposure {exposure} missing from the lineage graph"
        assert drawn[unique_id][0] == "exposure"
    assert LINEAGE_SCREENSHOT.stat().st_size > 10_000
