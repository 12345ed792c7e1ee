#!/usr/bin/env bash
# What an Ansible user gets from `ansible-galaxy collection install`: build the collection
# sidekiq_fleet.fleet from the files a clean clone has (tracked and not-ignored files only),
# install the tarball into an EMPTY collections path (--offline: Galaxy is never contacted), and
# use it from a playbook and an inventory written to a directory outside the checkout, with an
# ansible.cfg that knows nothing of this repository. Only the installed copy can answer there:
# roles, filters, the module (and its module_utils) and the playbooks by FQCN.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${VENV_BIN:-$repo/.venv/bin}"
work="$(mktemp -d "${TMPDIR:-/tmp}/sidekiq-fleet-collection.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { printf '== %s\n' "$*"; }
fail() { printf 'check_collection: FAILED: %s\n' "$*" >&2; exit 1; }

say "copy the files a clean clone has"
mkdir -p "$work/clone"
(cd "$repo" && git ls-files -co --exclude-standard | while IFS= read -r f; do
   [ -e "$f" ] || [ -L "$f" ] && printf '%s\n' "$f"; done | tar -cf - -T -) | tar -xf - -C "$work/clone"

say "ansible-galaxy collection build"
(cd "$work/clone" && "$bin/ansible-galaxy" collection build --output-path "$work/dist" .)
tarball="$(ls "$work"/dist/sidekiq_fleet-fleet-*.tar.gz)"

say "the tarball holds collection content only"
tar -tzf "$tarball" >"$work/contents"
for wanted in meta/runtime.yml MANIFEST.json FILES.json README.md \
    plugins/filter/sidekiq_fleet.py plugins/filter/gitlab_omnibus.py plugins/modules/sidekiq_migrate_jobs.py \
    plugins/module_utils/sidekiq_jobs.py playbooks/site.yml apps/sample/all_queues.yml \
    monitoring/prometheus.yml.j2 roles/gitlab_omnibus/files/record_settings.rb playbooks/gitlab_rb.yml; do
  grep -qx "$wanted" "$work/contents" || fail "$wanted is missing from $(basename "$tarball")"
done
for role in fleet common pki firewall redis postgresql gitaly sidekiq_app sidekiq_exporter sidekiq rails haproxy gitlab_omnibus; do
  for wanted in "roles/$role/meta/argument_specs.yml" "roles/$role/README.md"; do
    grep -qx "$wanted" "$work/contents" || fail "$wanted is missing from $(basename "$tarball")"
  done
done
if grep -E '^(simulator|tests|molecule|inventories|collections|scripts|benchmarks|out|\.venv|\.lab|\.ansible)(/|$)|\.egg-info|(^|/)\.pki(/|$)|__pycache__' \
    "$work/contents"; then
  fail "the lines above are not collection content (add them to build_ignore in galaxy.yml)"
fi
echo "$(basename "$tarball"): $(wc -l <"$work/contents") entries"

# From here on: a directory outside the checkout, its own ansible.cfg, the installed copy only
# (the venv's ansible community bundle is found through Python's path).
outside="$work/outside"
mkdir -p "$outside/group_vars" "$work/collections"
cat >"$outside/ansible.cfg" <<EOF
[defaults]
collections_path = $work/collections
retry_files_enabled = False
interpreter_python = auto_silent
EOF
export ANSIBLE_CONFIG="$outside/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$work/collections"
unset ANSIBLE_ROLES_PATH ANSIBLE_LIBRARY ANSIBLE_MODULE_UTILS ANSIBLE_FILTER_PLUGINS
cd "$outside"

say "ansible-galaxy collection install --offline into an empty collections path"
"$bin/ansible-galaxy" collection install --offline -p "$work/collections" "$tarball"

say "the collection resolves to the installed copy"
"$bin/ansible-galaxy" collection list sidekiq_fleet.fleet | tee "$work/list"
grep -q "^# $work/collections/ansible_collections$" "$work/list" \
  || fail "sidekiq_fleet.fleet is not listed from $work/collections"
[ "$(grep -c '^sidekiq_fleet.fleet ' "$work/list")" = 1 ] \
  || fail "sidekiq_fleet.fleet is found in more than one collections path"

say "ansible-doc sidekiq_fleet.fleet.sidekiq_migrate_jobs and the role docs"
"$bin/ansible-doc" sidekiq_fleet.fleet.sidekiq_migrate_jobs >"$work/doc-module"
grep -q "$work/collections/ansible_collections/sidekiq_fleet/fleet/plugins/modules/sidekiq_migrate_jobs.py" \
  "$work/doc-module" || fail "ansible-doc did not read the module from the installed collection"
head -3 "$work/doc-module"
"$bin/ansible-doc" -t role sidekiq_fleet.fleet.redis >"$work/doc-role"
grep -q "redis_bind_addresses" "$work/doc-role" || fail "ansible-doc -t role shows no redis_bind_addresses"
head -3 "$work/doc-role"

cat >"$outside/hosts.yml" <<'EOF'
---
all:
  children:
    sidekiq:
      hosts:
        worker1.example.com:
          sidekiq_queue_groups: ["high-urgency", "default,mailers"]
          sidekiq_concurrency: 10
    rails:
      hosts:
        rails1.example.com:
    redis:
      hosts:
        redis1.example.com:
EOF
cat >"$outside/group_vars/all.yml" <<'EOF'
---
sidekiq_routing_rules:
  - ["urgency=high", "high-urgency"]
  - ["*", "default"]
EOF

# A user's own playbooks: the filters and the module on the controller (run for real), the
# roles by FQCN (syntax and task lists: they would configure real nodes).
cat >"$outside/controller.yml" <<'EOF'
---
- name: Filters and the module of the installed collection answer on the controller
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    processes: "{{ ['high-urgency', 'default,mailers'] | sidekiq_fleet.fleet.sidekiq_processes(concurrency=5) }}"
    routing: "{{ [['urgency=high', 'high-urgency'], ['*', 'default']] | sidekiq_fleet.fleet.sidekiq_routing_map }}"
  tasks:
    - name: The routing engine plans one process per queue group
      ansible.builtin.assert:
        that:
          - processes | length == 2
          - processes[1].queues | sort == ['default', 'mailers']
          - processes[1].sidekiq_args == ['-c', '5', '-q', 'default,1', '-q', 'mailers,1']
          - routing['AuthorizedKeysWorker'] == 'high-urgency'
          - "'0.0.0.0:6379' | sidekiq_fleet.fleet.sidekiq_fleet_wildcard"
          - "'127.0.0.1' | sidekiq_fleet.fleet.sidekiq_fleet_loopback"
        quiet: true

    - name: The job migration module and its module_utils load from the collection (no Redis here)
      sidekiq_fleet.fleet.sidekiq_migrate_jobs:
        mapping: {AuthorizedKeysWorker: high-urgency}
        retired_queues: [authorized_keys]
        redis_port: 1
        socket_connect_timeout: 2
      register: migrate
      # A Redis connection error (not an import error) proves module and module_utils loaded.
      failed_when: migrate.msg | default('') is not search('^Redis error .*Connection refused')

    - name: The processes are shown
      ansible.builtin.debug:
        msg: "{{ processes | map(attribute='sidekiq_args') | list }}"
EOF

cat >"$outside/roles.yml" <<'EOF'
---
- name: The roles of the collection, by FQCN
  hosts: redis:sidekiq:rails
  become: true
  roles:
    - role: sidekiq_fleet.fleet.common
    - role: sidekiq_fleet.fleet.pki
    - role: sidekiq_fleet.fleet.redis
      when: "'redis' in group_names"
    - role: sidekiq_fleet.fleet.sidekiq
      when: "'sidekiq' in group_names"
    - role: sidekiq_fleet.fleet.rails
      when: "'rails' in group_names"
    - role: sidekiq_fleet.fleet.firewall
EOF

say "ansible-playbook --syntax-check (roles by FQCN, the collection's site playbook)"
"$bin/ansible-playbook" -i hosts.yml --syntax-check controller.yml roles.yml
"$bin/ansible-playbook" -i hosts.yml --syntax-check sidekiq_fleet.fleet.site

say "ansible-playbook --list-tasks (every role's tasks load from the installed copy)"
"$bin/ansible-playbook" -i hosts.yml --list-tasks roles.yml >"$work/tasks"
for role in fleet common pki redis sidekiq_app sidekiq_exporter sidekiq rails firewall; do
  grep -q "^      sidekiq_fleet.fleet.$role : " "$work/tasks" || fail "no task of sidekiq_fleet.fleet.$role is listed"
done
"$bin/ansible-playbook" -i hosts.yml --list-tasks sidekiq_fleet.fleet.site >/dev/null
echo "$(grep -c "^      sidekiq_fleet.fleet" "$work/tasks") role tasks listed"

say "ansible-playbook on localhost: filters and module of the installed collection"
"$bin/ansible-playbook" -i hosts.yml -e "ansible_python_interpreter=$bin/python" \
  controller.yml

say "ansible-playbook sidekiq_fleet.fleet.preflight (the fleet checks on this inventory)"
"$bin/ansible-playbook" -i hosts.yml sidekiq_fleet.fleet.preflight

say "OK: $(basename "$tarball") installs offline and works by FQCN outside the checkout"
