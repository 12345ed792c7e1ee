#!/bin/sh
# Ansible Vault password client for this checkout (ANSIBLE_VAULT_PASSWORD_FILE / vault_password_file).
# Prints the password kept in the git-ignored .lab/vault-password, creating a strong random one
# the first time. Operators of real fleets point ANSIBLE_VAULT_PASSWORD_FILE at their own source:
# this client warns when the Ansible command that called it names an inventory outside the lab's
# and molecule's, and fails rather than hand Ansible an empty password.
# Safe when called by several processes at once (ansible-lint does): the first `ln` wins.
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
file="${SIDEKIQ_FLEET_VAULT_PASSWORD_FILE:-$root/.lab/vault-password}"
if [ ! -e "$file" ]; then
  mkdir -p "$(dirname "$file")"
  umask 077
  tmp="$(mktemp "$file.XXXXXX")"
  python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$tmp"
  ln "$tmp" "$file" 2>/dev/null || true
  rm -f "$tmp"
fi
password="$(tr -d '[:space:]' <"$file")"
if [ -z "$password" ]; then
  echo "vault-password.sh: error: $file holds no password (empty or blank). Remove it to have a new random one made, or write the lab's password into it." >&2
  exit 1
fi
# The inventories the calling Ansible command names (-i X, -iX, --inventory X, --inventory=X).
# Only an Ansible command (ansible, ansible-playbook, ansible-inventory...) can deploy with the
# password; fleetsim also reads inventories (plan, simulate) but never touches a host.
if [ -r "/proc/$PPID/cmdline" ]; then
  tr '\0' '\n' <"/proc/$PPID/cmdline" | awk '
    !ansible { name = $0; sub(/.*\//, "", name); if (name ~ /^ansible/) ansible = 1; next }
    want { print; want = 0; next }
    $0 == "-i" || $0 == "--inventory" || $0 == "--inventory-file" { want = 1; next }
    /^--inventory=/ { sub(/^--inventory=/, ""); print; next }
    /^-i./ { sub(/^-i/, ""); print }' |
  while IFS= read -r inventory; do
    case "$inventory" in
      *inventories/lab* | *molecule* | localhost,) ;;
      *) echo "vault-password.sh: warning: this is the lab's vault password, but the inventory '$inventory' is not the lab's; point ANSIBLE_VAULT_PASSWORD_FILE at that fleet's own password source." >&2 ;;
    esac
  done
fi
printf '%s\n' "$password"
