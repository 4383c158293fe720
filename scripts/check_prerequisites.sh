#!/usr/bin/env bash
# Check the tools the project needs before anything is installed; each
# failure prints one line naming what to install.
set -u
python_bin=${PYTHON:-python3}
status=0
if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "error: $python_bin not found: install Python 3.11 (for example the python3.11 package)" >&2
    status=1
elif ! "$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    found=$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "error: Python 3.11 is required, $python_bin is $found: install Python 3.11 or run make with PYTHON=/path/to/python3.11" >&2
    status=1
fi
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
    echo "error: Java not found: install a Java 17 runtime (for example openjdk-17-jre-headless)" >&2
    status=1
fi
exit "$status"
