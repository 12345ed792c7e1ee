#!/usr/bin/env bash
# What a user gets from `pip install sidekiq-fleet`: build a (non-editable) wheel from the
# package's own files, install it without extras into a fresh venv (exact versions from
# constraints.txt), and run fleetsim on the examples from a directory outside the checkout, so
# nothing can come from the source tree: the catalog must be package data, ansible-core a
# runtime dependency, and the optional extras (plots, dask) must stay optional.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/fleetsim-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { printf '== %s\n' "$*"; }
fail() { printf 'check_wheel: FAILED: %s\n' "$*" >&2; exit 1; }

# Only what the sdist/wheel is made from: a file the package needs but does not declare is
# missing here as it would be for a user.
say "copy the package sources"
mkdir -p "$work/src"
(cd "$repo" && git ls-files -co --exclude-standard -- pyproject.toml README.md simulator \
   | tar -cf - -T -) | tar -xf - -C "$work/src"

say "build the wheel"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/sidekiq_fleet-*.whl)"
echo "$(basename "$wheel")"

say "install it into a fresh venv, without extras"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  -c "$repo/constraints.txt" "$wheel"
for extra in matplotlib distributed; do
  if "$work/venv/bin/python" -c "import $extra" 2>/dev/null; then
    fail "$extra is installed without its extra: it must stay optional"
  fi
done

# A user's shell: no checkout on the path, no project ansible.cfg.
run_dir="$work/run"
mkdir -p "$run_dir"
cd "$run_dir"
unset PYTHONPATH ANSIBLE_CONFIG
fleetsim="$work/venv/bin/fleetsim"
origin="$("$work/venv/bin/python" -c 'import simulator; print(simulator.__file__)')"
case "$origin" in "$work/venv/"*) ;; *) fail "simulator imported from $origin";; esac

say "fleetsim --version"
"$fleetsim" --version

say "fleetsim route match 'urgency=high&resource_boundary=cpu'"
matched="$("$fleetsim" route match 'urgency=high&resource_boundary=cpu')"
[[ -n "$matched" ]] || fail "route match selected no worker from the shipped catalog"
echo "$(wc -l <<<"$matched") workers, first: $(head -1 <<<"$matched")"

say "fleetsim plan -i inventories/example"
"$fleetsim" plan -i "$repo/inventories/example" >"$work/plan.txt" \
  || fail "plan exited $? (output in the lines above)"
tail -3 "$work/plan.txt"

say "fleetsim simulate (examples/workloads/example.yml, 2 simulated minutes)"
"$fleetsim" simulate -i "$repo/inventories/example" \
  --workload "$repo/examples/workloads/example.yml" --duration 2m --json >"$work/sim.json"
"$work/venv/bin/python" - "$work/sim.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
counters = report["counters"]
assert counters["succeeded"] > 0, counters
print(f"{counters['arrived']} jobs arrived, {counters['succeeded']} succeeded, "
      f"SLOs met: {report['slo']['met']}")
PY

say "fleetsim simulate --plots without the plots extra: one line, exit 2"
set +e
"$fleetsim" simulate -i "$repo/inventories/example" \
  --workload "$repo/examples/workloads/example.yml" --duration 1m --plots "$work/plots" \
  >/dev/null 2>"$work/err.txt"
code=$?
set -e
cat "$work/err.txt"
[[ $code -eq 2 ]] || fail "exit $code, not 2"
grep -q "sidekiq-fleet\[plots\]" "$work/err.txt" || fail "the message does not name the extra"
[[ $(wc -l <"$work/err.txt") -eq 1 ]] || fail "the message is not one line"

say "the installed wheel works"
