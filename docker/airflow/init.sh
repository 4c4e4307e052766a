#!/usr/bin/env bash
# The airflow-init service of docker-compose.yaml: runs once, as root, before any other Airflow
# service starts (they wait for it with service_completed_successfully).
#   1. Migrates the metadata database (PostgreSQL).
#   2. Writes the login of the admin user into the simple auth manager's password file
#      (AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD; rewritten on every start).
#   3. On the first start only: the workers' SSH key pair (the "scp_target" connection's key_file)
#      in SSH_KEYS_DIR, the Airflow side's own volume (airflow-ssh). On every start: its public
#      key, and nothing else, into SSH_PUBLIC_DIR (ssh-public-keys), where scp-target-init
#      (docker/sshd/init-keys.sh) takes it for the target's authorized_keys and leaves the
#      target's host key as the known_hosts the workers check (StrictHostKeyChecking=yes).
# The password file and the private key belong to the user the Airflow services run as
# (AIRFLOW_UID, 50000).
set -euo pipefail

airflow_uid="${AIRFLOW_UID:-50000}"
keys="${SSH_KEYS_DIR:-/opt/airflow/ssh}"
public="${SSH_PUBLIC_DIR:-/opt/airflow/ssh-public}"
# bash names the variable before each message
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?unset (the password file of the simple auth manager)}"
admin="${AIRFLOW_ADMIN_USER:?unset or empty (the name of the admin user)}"
: "${AIRFLOW_ADMIN_PASSWORD:?unset or empty (set it in .env, see .env.example)}"

echo "airflow-init: migrating the metadata database"
"${AIRFLOW_ENTRYPOINT:-/entrypoint}" airflow db migrate  # the image's entrypoint: waits for the database first

echo "airflow-init: login of user '${admin}' -> ${passwords}"
install -d -m 0750 -o "${airflow_uid}" -g 0 "$(dirname "${passwords}")"
python - "${passwords}" "${admin}" <<'PY'
import json, os, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({sys.argv[2]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, out)
    out.write("\n")
PY
chown "${airflow_uid}:0" "${passwords}"
chmod 0600 "${passwords}"

install -d -m 0755 -o 0 -g 0 "${keys}" "${public}"
if [[ ! -s "${keys}/id_ed25519" || ! -s "${keys}/id_ed25519.pub" ]]; then
  echo "airflow-init: making the workers' SSH key pair in ${keys}"
  rm -f "${keys}/id_ed25519" "${keys}/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C "airflow@impala-transfer" -f "${keys}/id_ed25519"
fi
chown "${airflow_uid}:0" "${keys}/id_ed25519" "${keys}/id_ed25519.pub"
chmod 0600 "${keys}/id_ed25519"
chmod 0644 "${keys}/id_ed25519.pub"
echo "airflow-init: the workers' public key -> ${public}/id_ed25519.pub"
install -m 0644 -o 0 -g 0 "${keys}/id_ed25519.pub" "${public}/id_ed25519.pub"

echo "airflow-init: done; the UI is http://127.0.0.1:8080 (user '${admin}')"
