#!/usr/bin/env bash
# Debian packages the unit tests need on the machine that runs them (a real redis-server for the
# job-migration and exporter tests, openssl for the exporter TLS test, promtool for the alert
# rules). Installs them when missing and we are root on Debian; otherwise says what to install.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ruby >/dev/null 2>&1 || missing+=(ruby)
# ssh: Ansible's SSH connection and the firewall test that logs in to a lab node over SSH.
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
# promtool (Debian ships it in prometheus): `promtool check rules` and `promtool test rules` on the
# rules `fleetsim alerts` writes (tests/report/test_alerts.py). Like redis-server, the package
# starts its server where systemd runs (:9090; `systemctl disable --now prometheus` if unwanted).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "hostdeps: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "hostdeps: error: the tests need ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
