"""Bad input to fleetsim: exit 2 and a message naming the file (or option) and the fix.

Never a traceback, a hang, or silent acceptance (issue 9 item 11). Each case runs the CLI's
``main()`` as an operator would; argparse's own errors (SystemExit 2) count as exit 2.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from simulator.cli.main import main
from simulator.inputs import MAX_SIMULATED_S

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "example")
WORKLOAD = str(ROOT / "examples" / "workloads" / "example.yml")
TARGET = str(ROOT / "examples" / "migrations" / "to-few-queues.yml")
SEGMENT = 'segments:\n  - {match: "*", rate_per_s: 1, service: {mean_s: 1}}\n'
LAUGHS = (
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(8)
    )
    + "segments: [*i]\n"
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects an option value
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def assert_usable_error(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)


def write(path: Path, data: str | bytes) -> str:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return str(path)


# -- files that are not UTF-8 text ------------------------------------------------------------

NON_UTF8 = SEGMENT.encode() + b"# caf\xe9 \xff\n"


def test_non_utf8_workload(capsys, tmp_path):
    path = write(tmp_path / "w.yml", NON_UTF8)
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m")
    assert_usable_error(code, err, path, "UTF-8", "line 3", "fix:")


def test_non_utf8_rules(capsys, tmp_path):
    path = write(tmp_path / "rules.yml", b'- ["*", "d\xe9fault"]\n')
    code, _, err = run(capsys, "route", "resolve", "--rules", path)
    assert_usable_error(code, err, path, "UTF-8", "line 1", "fix:")


def test_non_utf8_catalog(capsys, tmp_path):
    path = write(tmp_path / "cat.yml", b"- :name: caf\xe9\n  :worker_name: CafeWorker\n")
    code, _, err = run(capsys, "route", "match", "*", "--catalog", path)
    assert_usable_error(code, err, path, "UTF-8", "fix:")


def test_non_utf8_target(capsys, tmp_path):
    path = write(tmp_path / "to.yml", b'sidekiq_routing_rules: [["*", "d\xe9fault"]]\n')
    code, _, err = run(capsys, "migrate", "-i", INVENTORY, "--to", path, "--workload", WORKLOAD)
    assert_usable_error(code, err, path, "UTF-8", "fix:")


def test_binary_catalog(capsys, tmp_path):
    blob = bytes(range(256)) * 40
    path = write(tmp_path / "cat.bin", blob)
    code, _, err = run(capsys, "route", "match", "*", "--catalog", path)
    assert_usable_error(code, err, path, "fix:")
    assert len(err) < 2000


def test_non_utf8_trace(capsys, tmp_path):
    write(tmp_path / "t.csv", b"time,worker_class,duration\n0,Caf\xe9Worker,1\n")
    path = write(tmp_path / "w.yml", "trace: {file: t.csv}\n")
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m")
    assert_usable_error(code, err, path, "t.csv", "UTF-8")


# -- YAML bombs --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["workload", "rules", "catalog", "target"])
def test_billion_laughs_is_refused_quickly(capsys, tmp_path, kind):
    path = write(tmp_path / f"{kind}.yml", LAUGHS)
    argv = {
        "workload": ["simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m"],
        "rules": ["route", "resolve", "--rules", path],
        "catalog": ["route", "match", "*", "--catalog", path],
        "target": ["migrate", "-i", INVENTORY, "--to", path, "--workload", WORKLOAD],
    }[kind]
    start = time.monotonic()
    code, _, err = run(capsys, *argv)
    assert time.monotonic() - start < 20
    assert_usable_error(code, err, path, "alias", "fix:")


def test_recursive_alias_is_refused(capsys, tmp_path):
    path = write(tmp_path / "rules.yml", "&a [*a]\n")
    code, _, err = run(capsys, "route", "resolve", "--rules", path)
    assert_usable_error(code, err, path, "fix:")


def test_deeply_nested_yaml_is_refused(capsys, tmp_path):
    path = write(tmp_path / "rules.yml", "[" * 20000 + "]" * 20000 + "\n")
    code, _, err = run(capsys, "route", "resolve", "--rules", path)
    assert_usable_error(code, err, path, "fix:")


# -- infinities and NaN in a workload ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('segments:\n  - {match: "*", rate_per_s: .inf, service: {mean_s: 1}}\n', "rate_per_s"),
        ('segments:\n  - {match: "*", rate_per_s: .nan, service: {mean_s: 1}}\n', "rate_per_s"),
        ('segments:\n  - {match: "*", rate_per_s: 1, service: {mean_s: .inf}}\n', "mean_s"),
        ('segments:\n  - {match: "*", rate_per_s: 1, service: {distribution: lognormal, '
         "mean_s: 1, p99_s: .inf}}\n", "p99_s"),
        ('segments:\n  - {match: "*", rate_per_s: 1, service: {distribution: empirical, '
         "samples: [1, .inf]}}\n", "sample"),
        ('segments:\n  - {match: "*", rate_per_s: 1, service: {distribution: empirical, '
         "samples: [.nan]}}\n", "sample"),
        (SEGMENT + "events:\n  - {at: .inf, action: restart, node: sidekiq1.example.com}\n",
         "events entry 1"),
        (SEGMENT + "events:\n  - {at: .nan, action: restart, node: sidekiq1.example.com}\n",
         "events entry 1"),
        (SEGMENT + "events:\n  - {at: 1m, action: restart, node: sidekiq1.example.com, "
         "timeout_s: .inf}\n", "timeout_s"),
        (SEGMENT + "slo: {queueing_apdex: .nan}\n", "queueing_apdex"),
    ],
)
def test_infinite_or_nan_workload_values(capsys, tmp_path, text, words):
    path = write(tmp_path / "w.yml", text)
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m")
    assert_usable_error(code, err, path, words, "fix:")


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ("{at: 1m, action: restart, node: sidekiq1.example.com, boot: 30}",
         "unknown restart event keys: 'boot'"),
        ("{at: 1m, action: node_down, node: sidekiq1.example.com, timeout_s: 5}",
         "unknown node_down event keys: 'timeout_s'"),
        ("{at: 1m, action: node_up, nodes: sidekiq1.example.com, node: sidekiq1.example.com}",
         "unknown node_up event keys: 'nodes'"),
        ('{at: 1m, action: routing, rules: [["*", "default"]], share: 0.5}',
         "unknown routing event keys: 'share'"),
    ],
)
def test_unknown_event_keys_are_refused(capsys, tmp_path, event, words):
    """A misspelt event setting (boot: for boot_s:) was silently ignored: the run used the
    default and said nothing."""
    path = write(tmp_path / "w.yml", SEGMENT + f"events:\n  - {event}\n")
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m")
    assert_usable_error(code, err, path, "events entry 1", words, "fix:")


def test_infinite_trace_time(capsys, tmp_path):
    write(tmp_path / "t.csv", "time,worker_class,duration\n0,PostReceive,1\ninf,PostReceive,1\n")
    path = write(tmp_path / "w.yml", "trace: {file: t.csv}\n")
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m")
    assert_usable_error(code, err, path, "line 3")


# -- command-line options ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "1e308", "100000d", "31d", "-5m"])
def test_duration_has_a_ceiling(capsys, value):
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", WORKLOAD,
                       "--duration", value)
    assert_usable_error(code, err, "--duration")
    assert MAX_SIMULATED_S == 30 * 86400


def test_duration_at_the_ceiling_is_accepted():
    from simulator.cli.options import duration

    assert duration("30d") == MAX_SIMULATED_S


@pytest.mark.parametrize("value", ["inf", "1e308", "nan"])
def test_phase_gap_has_a_ceiling(capsys, value):
    code, _, err = run(capsys, "migrate", "-i", INVENTORY, "--to", TARGET, "--workload",
                       WORKLOAD, "--phase-gap", value)
    assert_usable_error(code, err, "--phase-gap")


def test_migration_longer_than_the_ceiling(capsys):
    code, _, err = run(capsys, "migrate", "-i", INVENTORY, "--to", TARGET, "--workload",
                       WORKLOAD, "--phase-gap", "20d")
    assert_usable_error(code, err, "--phase-gap", "fix:")


@pytest.mark.parametrize("cmd", ["simulate", "migrate", "capacity"])
@pytest.mark.parametrize("value", ["-1", "2e3", str(2**64)])
def test_seed_must_be_a_small_whole_number(capsys, cmd, value):
    extra = {"simulate": [], "capacity": ["--group", "default,mailers"],
             "migrate": ["--to", TARGET]}[cmd]
    code, _, err = run(capsys, cmd, "-i", INVENTORY, "--workload", WORKLOAD, "--seed", value,
                       *extra)
    assert_usable_error(code, err, "--seed")


@pytest.mark.parametrize("cmd", ["simulate", "migrate"])
def test_plots_into_an_unwritable_directory_fail_before_simulating(capsys, tmp_path, cmd):
    blocker = tmp_path / "somefile"
    blocker.write_text("a file, not a directory\n")
    plots = str(blocker / "plots")
    extra = ["--to", TARGET] if cmd == "migrate" else ["--duration", "30d"]
    start = time.monotonic()
    code, out, err = run(capsys, cmd, "-i", INVENTORY, "--workload", WORKLOAD,
                         "--plots", plots, *extra)
    assert time.monotonic() - start < 20  # refused before a 30-day simulation
    assert_usable_error(code, err, plots, "--plots", "fix:")
    assert out == ""


def test_plots_onto_a_regular_file(capsys, tmp_path):
    blocker = tmp_path / "somefile"
    blocker.write_text("x\n")
    code, _, err = run(capsys, "simulate", "-i", INVENTORY, "--workload", WORKLOAD,
                       "--plots", str(blocker), "--duration", "1m")
    assert_usable_error(code, err, str(blocker), "--plots")


# -- inventories and migration targets --------------------------------------------------------


def _hosts_as_list_inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    sidekiq:\n      hosts:\n        - sk1.example.com\n"
        "        - sk2.example.com\n")
    return inv


@pytest.mark.parametrize("cmd", ["plan", "simulate"])
def test_inventory_hosts_given_as_a_list(capsys, tmp_path, cmd):
    inv = _hosts_as_list_inventory(tmp_path)
    argv = ["plan", "-i", str(inv)] if cmd == "plan" else [
        "simulate", "-i", str(inv), "--workload", WORKLOAD, "--duration", "1m"]
    code, out, err = run(capsys, *argv)
    assert_usable_error(code, err, "hosts.yml", "hosts", "fix:")
    assert "no-sidekiq-hosts" not in out + err


def test_target_hosts_given_as_a_list(capsys, tmp_path):
    path = write(tmp_path / "to.yml", 'sidekiq_routing_rules: [["*", "default"]]\n'
                 "hosts: [sidekiq1.example.com]\n")
    code, _, err = run(capsys, "migrate", "-i", INVENTORY, "--to", path, "--workload", WORKLOAD)
    assert_usable_error(code, err, path, "hosts", "fix:")


def test_target_hosts_entry_not_a_mapping(capsys, tmp_path):
    path = write(tmp_path / "to.yml", 'sidekiq_routing_rules: [["*", "default"]]\n'
                 "hosts: {sidekiq1.example.com: [default]}\n")
    code, _, err = run(capsys, "migrate", "-i", INVENTORY, "--to", path, "--workload", WORKLOAD)
    assert_usable_error(code, err, path, "sidekiq1.example.com", "fix:")


# -- an error echoes a bounded excerpt of the input ------------------------------------------

BIG = "x" * 100_000


def _inventory_with(tmp_path: Path, **group_vars) -> str:
    import yaml

    inv = tmp_path / "inv"
    shutil.copytree(INVENTORY, inv)
    path = inv / "group_vars" / "sidekiq.yml"
    data = yaml.safe_load(path.read_text())
    data.update(group_vars)
    path.write_text(yaml.safe_dump(data))
    return str(inv)


@pytest.mark.parametrize(
    "case",
    ["match", "match-spaced", "rule-queue", "rule-query", "duration", "event-action",
     "queue-group", "catalog-urgency"],
)
def test_error_echoes_a_bounded_excerpt(capsys, tmp_path, case):
    big_spaced = " ".join(["y" * 50] * 2000)
    if case in ("match", "match-spaced", "event-action"):
        value = BIG if case != "match-spaced" else big_spaced
        text = (f'segments:\n  - {{match: "{value}", rate_per_s: 1, service: {{mean_s: 1}}}}\n'
                if case != "event-action" else
                SEGMENT + f"events:\n  - {{at: 1m, action: {BIG}, node: x}}\n")
        path = write(tmp_path / "w.yml", text)
        argv = ["simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m"]
    elif case in ("rule-queue", "rule-query"):
        rule = f'[["*", "{BIG}"]]' if case == "rule-queue" else f'[["{BIG}=1", "default"]]'
        path = write(tmp_path / "rules.yml", rule + "\n")
        argv = ["route", "resolve", "--rules", path]
    elif case == "duration":
        argv = ["simulate", "-i", INVENTORY, "--workload", WORKLOAD, "--duration", BIG + "q"]
    elif case == "queue-group":
        inv = _inventory_with(tmp_path, sidekiq_queue_groups=["default,mailers", "a " + BIG])
        argv = ["plan", "-i", inv]
    else:
        path = write(tmp_path / "cat.yml", f"- :worker_name: AWorker\n  :urgency: :{BIG}\n")
        argv = ["route", "match", "*", "--catalog", path]
    code, _, err = run(capsys, *argv)
    assert_usable_error(code, err)
    assert not re.search(r"[xy]{81}", err), err[:500]
    assert len(err) < 3000, len(err)
