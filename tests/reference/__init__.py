"""Independent Python implementation of the Music Box data contract, for tests.

It reads the raw archives with the standard library and builds the marts in
plain Python, so that the dbt models can be checked against it on any input.
"""

from tests.reference.contract import compute_marts

__all__ = ["compute_marts"]
