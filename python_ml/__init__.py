"""Music Box: landing, synthetic data and model training around the dbt project."""

__version__ = "0.1.0"
