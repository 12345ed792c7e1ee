#!/bin/sh
# Ansible Vault password client for this checkout (ANSIBLE_VAULT_PASSWORD_FILE / vault_password_file).
# Prints the password kept in the git-ignored .lab/vault-password, creating a strong random one
# the first time. Operators of real fleets point ANSIBLE_VAULT_PASSWORD_FILE at their own source.
# Safe when called by several processes at once (ansible-lint does): the first `ln` wins.
set -eu
file="${SIDEKIQ_FLEET_VAULT_PASSWORD_FILE:-$(cd "$(dirname "$0")/.." && pwd)/.lab/vault-password}"
if [ ! -s "$file" ]; then
  mkdir -p "$(dirname "$file")"
  umask 077
  tmp="$(mktemp "$file.XXXXXX")"
  python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$tmp"
  ln "$tmp" "$file" 2>/dev/null || true
  rm -f "$tmp"
fi
cat "$file"
