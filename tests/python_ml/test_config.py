"""The Spark settings that every entry point reads from ``profiles.yml``."""

from __future__ import annotations

from pathlib import Path

from python_ml import config
from python_ml.servers import thrift

JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def _log4j_files(options: str) -> list[Path]:
    return [
        Path(option.removeprefix(thrift.LOG4J_OPTION))
        for option in options.split()
        if option.startswith(thrift.LOG4J_OPTION)
    ]


def test_session_settings_point_at_log4j_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MUSICBOX_PROJECT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    options = config.spark_settings()[JAVA_OPTIONS]
    files = _log4j_files(options)
    assert len(files) == 1
    # Rendered from the checkout, not the working directory.
    assert files[0].is_absolute()
    assert files[0] == config.project_dir() / "conf" / "log4j2.properties"
    assert files[0].is_file()
    assert "-Duser.timezone=UTC" in options.split()


def test_thrift_server_keeps_default_logging() -> None:
    options = thrift.server_settings()[JAVA_OPTIONS]
    assert _log4j_files(options) == []
    assert "-Duser.timezone=UTC" in options.split()
