#!/usr/bin/env bash
# The airflow-init service of docker-compose.yaml: runs once, as root, before any other Airflow
# service starts (they wait for it with service_completed_successfully).
#   1. Migrates the metadata database (PostgreSQL).
#   2. Writes the login of the admin user into the simple auth manager's password file
#      (AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD; rewritten on every start).
#   3. On the first start only: the SSH keys of the scp target. A key pair for the workers (the
#      "scp_target" connection's key_file), the target's host key, its authorized_keys, and the
#      known_hosts the workers check the host against (StrictHostKeyChecking=yes, no trust on
#      first use). Private keys never leave the ssh-keys volume.
# What it writes lives on named volumes and belongs to the user the Airflow services run as
# (AIRFLOW_UID, 50000), except the host's private key, which only sshd (root) reads.
set -euo pipefail

airflow_uid="${AIRFLOW_UID:-50000}"
keys="${SSH_KEYS_DIR:-/opt/airflow/ssh}"
scp_host="${SCP_TARGET_HOST:-scp-target}"
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?the password file of the simple auth manager}"
admin="${AIRFLOW_ADMIN_USER:?}"

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

install -d -m 0755 -o 0 -g 0 "${keys}"
if [[ ! -s "${keys}/id_ed25519" || ! -s "${keys}/ssh_host_ed25519_key" ]]; then
  echo "airflow-init: making the SSH keys of the workers and of ${scp_host} in ${keys}"
  rm -f "${keys}/id_ed25519" "${keys}/id_ed25519.pub" "${keys}/ssh_host_ed25519_key" "${keys}/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "airflow@impala-transfer" -f "${keys}/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "${scp_host}" -f "${keys}/ssh_host_ed25519_key"
fi
cp "${keys}/id_ed25519.pub" "${keys}/authorized_keys"
printf '%s %s\n' "${scp_host}" "$(cut -d' ' -f1,2 "${keys}/ssh_host_ed25519_key.pub")" > "${keys}/known_hosts"
chown "${airflow_uid}:0" "${keys}/id_ed25519" "${keys}/id_ed25519.pub"
chmod 0600 "${keys}/id_ed25519"
chown 0:0 "${keys}/ssh_host_ed25519_key" "${keys}/ssh_host_ed25519_key.pub" "${keys}/authorized_keys" "${keys}/known_hosts"
chmod 0600 "${keys}/ssh_host_ed25519_key"
chmod 0644 "${keys}/id_ed25519.pub" "${keys}/ssh_host_ed25519_key.pub" "${keys}/authorized_keys" "${keys}/known_hosts"

echo "airflow-init: done; the UI is http://127.0.0.1:8080 (user '${admin}')"
