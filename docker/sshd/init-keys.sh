#!/usr/bin/env bash
# The scp-target-init service of docker-compose.yaml: runs once, as root, after airflow-init and
# before scp-target (which waits for it with service_completed_successfully).
#   1. On the first start only: the target's host key, in TARGET_KEYS_DIR, the target's own volume
#      (scp-target-ssh).
#   2. On every start: authorized_keys from the workers' public key, and this host's public key as
#      the known_hosts line the workers check. Both cross over through SSH_PUBLIC_DIR
#      (ssh-public-keys), which holds public keys only; no private key leaves its side's volume.
set -euo pipefail

keys="${TARGET_KEYS_DIR:-/etc/ssh/impala-transfer}"
public="${SSH_PUBLIC_DIR:-/ssh-public}"
scp_host="${SCP_TARGET_HOST:-scp-target}"
client_key="${public}/id_ed25519.pub"

if [[ ! -s "${client_key}" ]]; then
  echo "scp-target-init: ${client_key}: missing (airflow-init writes the workers' public key; start it first)" >&2
  exit 1
fi
if grep -q 'PRIVATE KEY' "${client_key}"; then
  echo "scp-target-init: ${client_key}: a private key (only the public key may cross over; remove it)" >&2
  exit 1
fi

install -d -m 0755 -o 0 -g 0 "${keys}"
if [[ ! -s "${keys}/ssh_host_ed25519_key" || ! -s "${keys}/ssh_host_ed25519_key.pub" ]]; then
  echo "scp-target-init: making the host key of ${scp_host} in ${keys}"
  rm -f "${keys}/ssh_host_ed25519_key" "${keys}/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "${scp_host}" -f "${keys}/ssh_host_ed25519_key"
fi
chown 0:0 "${keys}/ssh_host_ed25519_key" "${keys}/ssh_host_ed25519_key.pub"
chmod 0600 "${keys}/ssh_host_ed25519_key"
chmod 0644 "${keys}/ssh_host_ed25519_key.pub"

echo "scp-target-init: ${client_key} -> ${keys}/authorized_keys"
install -m 0644 -o 0 -g 0 "${client_key}" "${keys}/authorized_keys"
echo "scp-target-init: the host key of ${scp_host} -> ${public}/known_hosts"
printf '%s %s\n' "${scp_host}" "$(cut -d' ' -f1,2 "${keys}/ssh_host_ed25519_key.pub")" > "${public}/known_hosts.new"
chmod 0644 "${public}/known_hosts.new"
mv -f "${public}/known_hosts.new" "${public}/known_hosts"
