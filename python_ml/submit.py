"""Entry script for ``spark-submit``: runs the ``musicbox`` command line.

Example::

    spark-submit --master 'local[2]' --driver-memory 6g python_ml/submit.py train all

spark-submit runs a script file, not a module, and puts the script's folder
first on ``sys.path``. That folder is this package, whose module names
(``data``, ``spark``, ``config``) would shadow top-level imports, so it is
replaced by the project root before ``python_ml`` is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _fix_import_path() -> None:
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != PACKAGE_DIR]
    sys.path.insert(0, str(PACKAGE_DIR.parent))


if __name__ == "__main__":
    _fix_import_path()
    from python_ml.cli import main

    sys.exit(main())
