#!/usr/bin/env bash
# `make demo`: converge the lab with site.yml, show the fleet plan, push real jobs through HAProxy
# to the producer, show them processed on the worker nodes, and simulate inventories/example.
# `make demo` has already set up .venv and brought the lab up (scripts/lab.sh up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg"
OUT="$ROOT/out/demo"
mkdir -p "$OUT"
JOBS_PER_CLASS="${DEMO_JOBS_PER_CLASS:-200}"
say() { printf '\n== %s\n' "$*"; }

say "Secrets (generated into inventories/lab/group_vars/all/vault.yml when missing)"
ansible-playbook -i inventories/lab playbooks/secrets.yml >"$OUT/secrets.log"
echo "ok (log: $OUT/secrets.log)"

say "ansible-playbook -i inventories/lab site.yml"
start=$(date +%s)
if ! ansible-playbook -i inventories/lab site.yml >"$OUT/site.log" 2>&1; then
  tail -40 "$OUT/site.log"
  echo "site.yml failed; full log: $OUT/site.log" >&2
  exit 1
fi
grep -A20 '^PLAY RECAP' "$OUT/site.log" | sed '/^$/q'
echo "converged in $(( $(date +%s) - start )) s (log: $OUT/site.log)"

say "fleetsim plan -i inventories/lab"
fleetsim plan -i inventories/lab || true

lb="$(ansible-inventory -i inventories/lab --host loadbalancer1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet_internal_address"])')"
say "Enqueue ${JOBS_PER_CLASS} jobs of each sample class through HAProxy (http://$lb:8080)"
batch="demo-$(date +%s)"
classes=(UrgentNotificationWorker ChecksumWorker RepositoryProbeWorker FlakyImportWorker AuditEventWorker)
for cls in "${classes[@]}"; do
  curl -fsS -X POST -d '' "http://$lb:8080/enqueue?class=$cls&n=$JOBS_PER_CLASS&batch=$batch" >/dev/null
  echo "enqueued $JOBS_PER_CLASS x $cls"
done
want=$(( JOBS_PER_CLASS * ${#classes[@]} ))
sql="SELECT count(DISTINCT jid) FROM sample_jobs WHERE batch = '$batch'"
psql_lab() { docker exec sidekiq-fleet-postgresql1 su postgres -c "psql -d gitlabhq_production -Atc \"$1\""; }
start=$(date +%s)
done_jobs=0
for _ in $(seq 1 120); do
  done_jobs=$(psql_lab "$sql" 2>/dev/null || echo 0)
  [ "$done_jobs" -ge "$want" ] && break
  sleep 1
done
secs=$(( $(date +%s) - start ))
echo "processed $done_jobs of $want jobs (rows in PostgreSQL) in about ${secs} s"
psql_lab "SELECT host, queue, count(*) FROM sample_jobs WHERE batch = '$batch' GROUP BY 1, 2 ORDER BY 1, 2" \
  | sed 's/^/  /'
if [ "$done_jobs" -lt "$want" ]; then
  # Name what is missing: each class short of its jobs, the queue it is routed to, who listens.
  counts="$(psql_lab "SELECT worker_class, count(DISTINCT jid) FROM sample_jobs WHERE batch = '$batch' GROUP BY 1" || true)"
  fleetsim plan -i inventories/lab --json | python3 -c '
import json, sys
want = int(sys.argv[1])
done = dict(line.split("|") for line in sys.argv[2].splitlines() if "|" in line)
routes = {w: r for r in json.load(sys.stdin)["routing"] for w in r["workers"]}
for cls in sys.argv[3:]:
    got = int(done.get(cls, 0))
    if got < want:
        route = routes.get(cls, {"queue": "?", "listeners": []})
        queue, listeners = route["queue"], ", ".join(route["listeners"]) or "nobody"
        print(f"  missing: {want - got} of {want} {cls} jobs, queue {queue}, listened to by {listeners}")
' "$JOBS_PER_CLASS" "$counts" "${classes[@]}" >&2 || true
  echo "demo: error: only $done_jobs of $want jobs were processed within 120 s. Look at the" \
    "workers' logs (docker exec sidekiq-fleet-sidekiq1 journalctl -u 'sidekiq@*') and $OUT/site.log." >&2
  exit 1
fi

say "Metrics and health on the worker nodes"
for host in sidekiq1 sidekiq2; do
  addr="$(ansible-inventory -i inventories/lab --host "$host" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet_internal_address"])')"
  echo "$host: http://$addr:8082/metrics  readiness: $(curl -s -o /dev/null -w '%{http_code}' "http://$addr:8092/readiness")"
  # This node's own processes (up, busy threads), then Sidekiq's counters for the whole Redis,
  # which every node exports alike under sidekiq_cluster_* (aggregate them with max, never sum).
  curl -fsS "http://$addr:8082/metrics" \
    | grep -E '^sidekiq_process_(up|busy_threads)\{|^sidekiq_cluster_jobs_(processed|failed)_total\{' \
    | sed 's/^/  /' || true
done
echo "Sidekiq Web (127.0.0.1:3211 on each worker, basic auth user admin, password vault_sidekiq_web_password):"
echo "  ssh -N -L 127.0.0.1:3211:127.0.0.1:3211 deploy@sidekiq1   # then open http://127.0.0.1:3211/"
echo "  in the lab: docker exec -it sidekiq-fleet-sidekiq1 curl -u admin:PASSWORD http://127.0.0.1:3211/"

say "fleetsim simulate -i inventories/example --workload examples/workloads/example.yml --duration 30m"
fleetsim simulate -i inventories/example --workload examples/workloads/example.yml \
  --duration 30m --plots "$OUT/plots" | tail -8 || true

say "Where to look"
echo "  plots:       $OUT/plots/{latency,backlog,utilisation,redis}.png"
echo "  logs:        $OUT/site.log"
echo "  containers:  bash scripts/lab.sh status   (docker exec -it sidekiq-fleet-sidekiq1 bash)"
echo "  tear down:   make lab-down"
