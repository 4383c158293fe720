"""Project locations and settings shared with the dbt project.

The dbt project is the source of truth: the landing folder comes from the
``landing_path`` var in ``dbt_project.yml`` and the Spark settings from the
``local`` target in ``profiles.yml``. Both files may use dbt's
``env_var('NAME', 'default')``, which is rendered here the way dbt renders it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROFILE_NAME = "music_box"
DEFAULT_TARGET = "local"


class ConfigError(RuntimeError):
    """A project file is missing or does not contain the expected setting."""


def project_dir() -> Path:
    """Return the dbt project root.

    ``MUSICBOX_PROJECT_DIR`` wins when set; otherwise the checkout that contains
    this package (an editable install) is used.
    """
    configured = os.environ.get("MUSICBOX_PROJECT_DIR")
    root = Path(configured) if configured else Path(__file__).resolve().parent.parent
    if not (root / "dbt_project.yml").is_file():
        raise ConfigError(
            f"dbt_project.yml not found in {root}; set MUSICBOX_PROJECT_DIR to the "
            "Music Box checkout"
        )
    return root


def data_dir() -> Path:
    """Return the absolute data folder (``MUSICBOX_DATA_DIR``, default ``data/``)."""
    configured = os.environ.get("MUSICBOX_DATA_DIR", "data")
    path = Path(configured)
    if not path.is_absolute():
        path = project_dir() / path
    return path


def _env_var(name: str, default: str | None = None) -> str:
    if name == "MUSICBOX_DATA_DIR":
        return str(data_dir())
    if name == "MUSICBOX_PROJECT_DIR":
        return str(project_dir())
    value = os.environ.get(name, default)
    if value is None:
        raise ConfigError(f"environment variable {name} is required by a project file but not set")
    return value


def _render(value: Any) -> Any:
    """Render dbt-style Jinja (``env_var`` only) in every string of a YAML value."""
    if isinstance(value, str):
        if "{{" not in value:
            return value
        environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
        environment.filters["as_number"] = lambda text: int(text)
        return environment.from_string(value).render(env_var=_env_var)
    if isinstance(value, dict):
        return {key: _render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item) for item in value]
    return value


@cache
def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def dbt_var(name: str) -> Any:
    """Return a var from ``dbt_project.yml``, rendered, relative paths unresolved."""
    variables = _load_yaml(project_dir() / "dbt_project.yml").get("vars", {})
    if name not in variables:
        raise ConfigError(f"var {name!r} is not defined in dbt_project.yml")
    return _render(variables[name])


def resolve_path(path: str | Path) -> Path:
    """Resolve a path from a project file the way dbt does: relative to the project root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else project_dir() / candidate


def landing_dir() -> Path:
    """Return the absolute landing folder set by the dbt var ``landing_path``."""
    return resolve_path(dbt_var("landing_path"))


def profile_target(target: str | None = None) -> dict[str, Any]:
    """Return one rendered output of the ``music_box`` profile in ``profiles.yml``."""
    profiles = _load_yaml(project_dir() / "profiles.yml")
    profile = profiles.get(PROFILE_NAME)
    if not profile:
        raise ConfigError(f"profile {PROFILE_NAME!r} is missing from profiles.yml")
    name = target or _render(profile.get("target", DEFAULT_TARGET))
    outputs = profile.get("outputs", {})
    if name not in outputs:
        raise ConfigError(
            f"target {name!r} is not in profiles.yml; known targets: {', '.join(sorted(outputs))}"
        )
    return _render(outputs[name])


def spark_settings() -> dict[str, str]:
    """Return the project's Spark settings: the ``local`` target's server-side parameters.

    Every path in them derives from ``MUSICBOX_DATA_DIR``, which is rendered as
    an absolute path, so a process started in another directory uses the same
    warehouse and metastore as dbt.
    """
    parameters = profile_target(DEFAULT_TARGET)["server_side_parameters"]
    return {key: str(value) for key, value in parameters.items()}
