#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian/Ubuntu machine: the system packages
# (Kerberos headers for the hdfs provider's gssapi build, PostgreSQL, Redis, Chromium,
# docker-compose, a Java 17 runtime for the local HiveServer2 server and Hadoop, Maven to fetch Hadoop's jars, OpenSSH server and client for the
# scp/sftp tests), then a virtualenv with the pinned, tested Python set (constraints.txt), then
# Hadoop 3.5.0 (tests/support/hadoop/pom.xml, from Maven Central into .hadoop/) for the local HDFS
# clusters the tests start (tests/support/local_hdfs.py). Idempotent: a second run installs nothing.
# The tests start their own sshd on 127.0.0.1 (tests/support/local_sshd.py); the system sshd service
# that installing openssh-server may start is neither needed nor used.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=""
apt_install() {  # the given Debian packages that are not installed yet, quietly
  local missing=() pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing system packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# PostgreSQL and Redis: the metadata database and Celery broker of the two-worker deployment test;
# Chromium: the browser the UI test drives (Playwright never downloads one); docker-compose: checks
# docker-compose.yaml offline (`docker-compose config -q`; no Docker engine runs here); MIT Kerberos:
# the KDC the Kerberos tests start without root (tests/support/local_kdc.py), kinit and klist.
apt_packages=(libkrb5-dev openssh-server openssh-client postgresql redis-server chromium docker-compose
              krb5-kdc krb5-admin-server krb5-user)
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
apt_install "${apt_packages[@]}"
# Maven after Java: its dependency on a Java runtime is then met by the one installed, rather than
# by Debian's default-jre-headless (another JDK where the default is not 17).
command -v mvn >/dev/null 2>&1 || apt_install maven

# Hadoop's jars into .hadoop/ (a no-op when they match tests/support/hadoop/pom.xml), from Maven
# Central while pip downloads from PyPI: the two fetches overlap (about a minute less on a fresh
# machine); fetch.sh replaces .hadoop/ only when it succeeded, and its failure fails the setup. It
# runs as its own process group (setsid), so a failing pip stops it with its Maven child.
setsid bash tests/support/hadoop/fetch.sh &
hadoop_fetch=$!
trap 'kill -- "-$hadoop_fetch" 2>/dev/null || true' EXIT

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[test]'

wait "$hadoop_fetch"
trap - EXIT
echo "setup: done ($("$VENV/bin/python" -c 'import airflow; print("airflow", airflow.__version__)'), hadoop 3.5.0)"
