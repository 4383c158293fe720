#!/usr/bin/env bash
# Install the Debian packages that the Thrift, shared-metastore, cluster and
# browser tests need. Safe to run again: apt-get skips what is installed.
#
#   libderby-java        Derby network server (derby.jar, derbynet.jar) that
#                        stores the shared Hive metastore
#   libderbyclient-java  Derby JDBC client driver (derbyclient.jar) that the
#                        Spark drivers put on their class path
#   chromium             headless browser for the dbt docs lineage test
#   chromium-driver      WebDriver server that selenium drives Chromium with
#
# Java 17 (openjdk-17-jre) must already be installed. Run as root.
set -euo pipefail

packages=(libderby-java libderbyclient-java chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages already installed: ${packages[*]}"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing ${missing[*]} needs root; rerun this script as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "installed: ${missing[*]}"
