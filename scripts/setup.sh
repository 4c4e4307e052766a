#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian/Ubuntu machine: the system packages
# (Kerberos headers for the hdfs provider's gssapi build, a Java 17 runtime for the local
# HiveServer2 server and Hadoop's FsShell, OpenSSH server and client for the scp/sftp tests),
# then a virtualenv with the pinned, tested Python set (constraints.txt).
# The tests start their own sshd on 127.0.0.1 (tests/support/local_sshd.py); the system sshd service
# that installing openssh-server may start is neither needed nor used.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

apt_packages=(libkrb5-dev openssh-server openssh-client)
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[test]'
echo "setup: done ($("$VENV/bin/python" -c 'import airflow; print("airflow", airflow.__version__)'))"
