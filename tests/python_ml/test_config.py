"""The Spark settings that every entry point reads from ``profiles.yml``."""

from __future__ import annotations

import shlex
from pathlib import Path

from python_ml import config
from python_ml.servers import thrift

JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def _log4j_files(options: str) -> list[Path]:
    return [
        Path(option.removeprefix(thrift.LOG4J_OPTION))
        for option in shlex.split(options)
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
    assert "-Duser.timezone=UTC" in shlex.split(options)


def test_thrift_server_keeps_default_logging() -> None:
    options = thrift.server_settings()[JAVA_OPTIONS]
    assert _log4j_files(options) == []
    assert "-Duser.timezone=UTC" in shlex.split(options)


def test_paths_with_spaces_stay_whole(tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data with spaces"
    monkeypatch.setenv("MUSICBOX_DATA_DIR", str(data_dir))
    options = shlex.split(config.spark_settings()[JAVA_OPTIONS])
    assert f"-Dderby.stream.error.file={data_dir}/derby.log" in options
    server_options = shlex.split(thrift.server_settings()[JAVA_OPTIONS])
    assert f"-Dderby.stream.error.file={data_dir}/derby.log" in server_options
