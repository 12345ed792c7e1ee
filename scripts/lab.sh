#!/usr/bin/env bash
# sidekiq-fleet lab: a Docker engine, a systemd base image built from Debian packages
# (never pulled from a registry), and the multi-node lab that inventories/lab describes.
#
#   bash scripts/lab.sh docker   make sure a Docker engine answers (installs and starts one if needed)
#   bash scripts/lab.sh image    build the systemd base image (cached by a hash of its recipe);
#                                DEBIAN_SUITE=bookworm builds the Debian 12 image (default trixie)
#   bash scripts/lab.sh up       create the lab network and start the lab containers (idempotent)
#   bash scripts/lab.sh down     remove the lab containers and network
#   bash scripts/lab.sh status   show the lab containers and their addresses
#
# Facts behind the settings: docs/lab-and-data-tier.md, "The lab" (no registry, explicit
# capability list, systemd as PID 1, one network with a fixed subnet).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# --- the recipe of the base image: change any of these and the image is rebuilt --------------
# DEBIAN_SUITE: trixie (Debian 13, stable, the default) or bookworm (Debian 12); every suite
# gets its own image, so both can be built side by side.
DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"
case "$DEBIAN_SUITE" in
  trixie|bookworm) ;;
  *) printf 'lab: error: DEBIAN_SUITE must be trixie or bookworm, not %s\n' "$DEBIAN_SUITE" >&2; exit 2 ;;
esac
IMAGE_REPO="${LAB_IMAGE_REPO:-sidekiq-fleet/systemd}"
IMAGE_STABLE="${IMAGE_REPO}:${DEBIAN_SUITE}"   # the name molecule scenarios and `up` use
DEBIAN_MIRROR="${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The lab.md list plus what makes every converge faster: python3-apt (Ansible's apt module
# would otherwise install it on every first run) and the packages the common role installs
# on every node anyway (nftables, tzdata).
IMAGE_PACKAGES="systemd,systemd-sysv,python3,sudo,iproute2,procps,ca-certificates,python3-apt,nftables,tzdata"
RECIPE_VERSION="3"   # bump when the build steps below change

# --- the lab network: fixed so firewall rules and pg_hba name real CIDRs ---------------------
LAB_NETWORK="${LAB_NETWORK:-sidekiq-fleet-lab}"
LAB_SUBNET="${LAB_SUBNET:-172.28.50.0/24}"
LAB_GATEWAY="${LAB_GATEWAY:-172.28.50.1}"
LAB_INVENTORY="${LAB_INVENTORY:-inventories/lab}"
LAB_LABEL="sidekiq-fleet.lab=1"

# Capabilities that let Debian's hardened units run (privileged / ALL fail on these hosts).
LAB_CAPS=(AUDIT_CONTROL AUDIT_READ AUDIT_WRITE CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID
  IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE MKNOD NET_ADMIN NET_BIND_SERVICE NET_RAW SETFCAP
  SETGID SETPCAP SETUID SYS_ADMIN SYS_CHROOT SYS_NICE SYS_PTRACE SYS_TIME SYSLOG)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
is_debian_like() { [ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*debian' /etc/os-release; }

apt_install() {
  # apt-get update once per script run, then install what is missing.
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

cmd_docker() {
  if docker info >/dev/null 2>&1; then
    log "Docker engine answers"
    return 0
  fi
  if ! is_root || ! is_debian_like; then
    die "no Docker engine answers (docker info failed). Start one yourself (for example: sudo systemctl start docker), or run this as root on Debian/Ubuntu so it can install docker.io and start dockerd."
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io"
    apt_install docker.io
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd in the background (log: /var/log/dockerd.log)"
    # setsid + closed descriptors: the daemon must not inherit a caller's lock (for example
    # `flock LOCK make test`), or it would hold that lock for as long as it runs.
    (
      for fd in /proc/self/fd/*; do
        n="${fd##*/}"
        [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null || true
      done
      exec setsid nohup dockerd </dev/null >/var/log/dockerd.log 2>&1
    ) &
  fi
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      log "Docker engine answers"
      return 0
    fi
    sleep 1
  done
  die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
}

recipe_hash() {
  printf '%s\n' "$RECIPE_VERSION" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$IMAGE_PACKAGES" \
    | sha256sum | cut -c1-12
}

cmd_image() {
  docker info >/dev/null 2>&1 || die "no Docker engine answers: run 'bash scripts/lab.sh docker' first"
  local hash tag rootfs
  hash="$(recipe_hash)"
  tag="${IMAGE_REPO}:${DEBIAN_SUITE}-${hash}"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag is up to date (recipe $hash)"
    docker tag "$tag" "$IMAGE_STABLE"
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    is_root && is_debian_like || die "debootstrap is missing: install it (apt-get install debootstrap) and retry"
    log "installing debootstrap"
    apt_install debootstrap
  fi
  is_root || die "building the image needs root (debootstrap)"
  rootfs="$(mktemp -d /var/tmp/sidekiq-fleet-rootfs.XXXXXX)"
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'" EXIT
  log "building $tag with debootstrap (about a minute)"
  debootstrap --variant=minbase --include="$IMAGE_PACKAGES" "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
    >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; die "debootstrap failed (full log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  # Container-friendly systemd: no getty on consoles that do not exist, no hostname/resolv
  # management (docker owns them), an empty machine-id that systemd fills at first boot.
  : >"$rootfs/etc/machine-id"
  for unit in getty.target console-getty.service systemd-timesyncd.service apt-daily.timer \
    apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  # Keep the package lists the build fetched: roles use cache_valid_time, so fresh images skip
  # one apt-get update per node. Drop downloaded .debs to keep the image small.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  printf 'sidekiq-fleet lab image, recipe %s\n' "$hash" >"$rootfs/etc/sidekiq-fleet-image"
  tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    --change "LABEL sidekiq-fleet.recipe=$hash" \
    - "$tag" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  docker tag "$tag" "$IMAGE_STABLE"
  log "built $tag and tagged $IMAGE_STABLE"
}

# Print "host container address" for every host of the lab inventory.
lab_hosts() {
  local inv_cmd="ansible-inventory"
  if [ -x "$ROOT/.venv/bin/ansible-inventory" ]; then inv_cmd="$ROOT/.venv/bin/ansible-inventory"; fi
  command -v "$inv_cmd" >/dev/null 2>&1 || die "ansible-inventory not found: run 'make setup' first"
  ANSIBLE_VAULT_PASSWORD_FILE="${ANSIBLE_VAULT_PASSWORD_FILE:-$ROOT/scripts/vault-password.sh}" \
    ANSIBLE_CONFIG="$ROOT/ansible.cfg" "$inv_cmd" -i "$LAB_INVENTORY" --list 2>/dev/null | python3 -c '
import json, sys
data = json.load(sys.stdin)
hostvars = data.get("_meta", {}).get("hostvars", {})
for host in sorted(hostvars):
    hv = hostvars[host]
    addr = hv.get("fleet_internal_address")
    if not addr:
        continue
    print(host, hv.get("ansible_host", host), addr)
'
}

cmd_up() {
  docker info >/dev/null 2>&1 || die "no Docker engine answers: run 'bash scripts/lab.sh docker' first"
  docker image inspect "$IMAGE_STABLE" >/dev/null 2>&1 || die "image $IMAGE_STABLE missing: run 'bash scripts/lab.sh image' first"
  if ! docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then
    log "creating network $LAB_NETWORK ($LAB_SUBNET)"
    docker network create --driver bridge --subnet "$LAB_SUBNET" --gateway "$LAB_GATEWAY" \
      --label "$LAB_LABEL" "$LAB_NETWORK" >/dev/null
  fi
  local caps=() cap hosts host container addr state
  for cap in "${LAB_CAPS[@]}"; do caps+=(--cap-add "$cap"); done
  hosts="$(lab_hosts)"
  [ -n "$hosts" ] || die "no hosts with fleet_internal_address in $LAB_INVENTORY"
  while read -r host container addr; do
    state="$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null || true)"
    if [ "$state" = "true" ]; then
      log "$container ($host, $addr) is running"
      continue
    elif [ -n "$state" ]; then
      log "starting existing $container"
      docker start "$container" >/dev/null
      continue
    fi
    log "creating $container ($host, $addr)"
    docker run -d --name "$container" --hostname "$host" \
      --network "$LAB_NETWORK" --ip "$addr" \
      --label "$LAB_LABEL" \
      --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
      --security-opt seccomp=unconfined \
      --cap-drop ALL "${caps[@]}" \
      "$IMAGE_STABLE" /lib/systemd/systemd >/dev/null
  done <<<"$hosts"
  # Wait until systemd in every container has finished booting (running or degraded).
  while read -r host container addr; do
    for _ in $(seq 1 60); do
      state="$(docker exec "$container" systemctl is-system-running 2>/dev/null || true)"
      case "$state" in running|degraded) break ;; esac
      sleep 1
    done
    log "$container: systemd ${state:-unknown}"
  done <<<"$hosts"
}

cmd_down() {
  if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers: nothing to remove"
    return 0
  fi
  local ids
  ids="$(docker ps -aq --filter "label=$LAB_LABEL")"
  if [ -n "$ids" ]; then
    log "removing lab containers"
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
  if docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then
    log "removing network $LAB_NETWORK"
    docker network rm "$LAB_NETWORK" >/dev/null
  fi
}

cmd_status() {
  docker ps -a --filter "label=$LAB_LABEL" --format 'table {{.Names}}\t{{.Status}}'
}

case "${1:-}" in
  docker) cmd_docker ;;
  image) cmd_image ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: bash scripts/lab.sh docker|image|up|down|status" >&2; exit 2 ;;
esac
