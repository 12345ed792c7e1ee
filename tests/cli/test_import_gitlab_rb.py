"""``fleetsim import gitlab-rb``: Omnibus gitlab.rb files (parsed, never run) into an inventory
that ``fleetsim plan``, ``simulate`` and ``migrate`` accept; a needed setting that is not a
literal, a file that is not well-formed Ruby and bad arguments are refused with exit 2 and a
message naming the file, the line and the fix, before anything is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main
from simulator.fleet.gitlab_rb import import_host

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "gitlab_rb"
CE_CATALOG = ROOT / "simulator" / "routing" / "data" / "all_queues_ce.yml"
WORKLOAD = ROOT / "examples" / "workloads" / "example.yml"
TARGET = ROOT / "examples" / "migrations" / "to-few-queues.yml"

#: GitLab's detailed example ("Processing specific job classes"), as docs-*.rb write it.
DOCS_RULES = [
    ["resource_boundary!=cpu&urgency=high", "high-urgency"],
    ["feature_category=database,gitaly,global_search&urgency=throttled", "throttled"],
    ["has_external_dependencies=true|feature_category=hooks|tags=network", "network-intensive"],
    ["*", "default"],
]
#: Every secret value of the sample files: none may reach the inventory.
SECRETS = ("abc123secret", "redis-password-goes-here", "postgresql-password-goes-here",
           "_the_password_of_the_bind_user", "a1b2c3d4e5f6", "placeholder-not-a-real-password",
           "placeholder-gitaly-token")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def load(path: Path):
    return yaml.safe_load(path.read_text())


def groups_of(inventory: Path) -> dict[str, list[str]]:
    children = load(inventory / "hosts.yml")["all"].get("children", {})
    return {group: list(members["hosts"]) for group, members in children.items()}


def assert_no_secret(inventory: Path) -> None:
    for path in inventory.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for secret in SECRETS:
                assert secret not in text, (path, secret)


# -- GitLab's documented setup ----------------------------------------------------------------


def _import_docs(capsys, tmp_path: Path, *options: str) -> tuple[Path, int, str]:
    out = tmp_path / "inventory"
    code, printed, err = run(capsys, "import", "gitlab-rb", "-o", str(out), *options,
                             f"gitlab={DATA / 'docs-gitlab.rb'}",
                             f"sidekiq1={DATA / 'docs-sidekiq.rb'}",
                             f"rails1={DATA / 'docs-rails.rb'}")
    assert code == 0, err
    return out, code, printed


def test_documented_external_sidekiq_setup(tmp_path, capsys):
    out, _, printed = _import_docs(capsys, tmp_path)
    # groups from roles and enables: the instance runs everything (no roles), the Sidekiq node
    # only Sidekiq (sidekiq_role), the Rails node Puma (application_role, sidekiq disabled)
    assert groups_of(out) == {"redis": ["gitlab"], "postgresql": ["gitlab"],
                              "gitaly": ["gitlab"], "rails": ["gitlab", "rails1"],
                              "sidekiq": ["gitlab", "sidekiq1"]}
    sidekiq = load(out / "host_vars" / "sidekiq1.yml")
    assert sidekiq == {
        "sidekiq_fleet_flavor": "omnibus",
        "fleet_internal_address": "10.10.1.48",
        "sidekiq_routing_rules": DOCS_RULES,
        # the second assignment replaces the reference architectures' ['*'] * 4
        "sidekiq_queue_groups": ["high-urgency", "high-urgency", "throttled,network-intensive",
                                 "default,mailers"],
        "sidekiq_exporter_metrics_enabled": True,
        "sidekiq_exporter_metrics_listen_address": "10.10.1.48",
        "fleet_sidekiq_metrics_port": 8082,
        "sidekiq_exporter_health_checks_enabled": True,
        "sidekiq_exporter_health_checks_listen_address": "10.10.1.48",
        "fleet_sidekiq_health_checks_port": 8092,
        "gitlab_external_url": "https://gitlab.example.com",
        "fleet_db_host": "10.10.1.30",
        "fleet_db_port": 5432,  # '5432' in the file: a port either way
        "fleet_redis_host": "10.10.1.30",
        "fleet_redis_port": 6379,
        "fleet_gitaly_address": "tcp://10.10.1.30:8075",
    }
    rails = load(out / "host_vars" / "rails1.yml")
    assert rails["sidekiq_routing_rules"] == DOCS_RULES
    # 6 Puma workers x (4 threads + the main thread + 4 Action Cable workers), 10 Redis each
    assert rails["rails_db_pool"] == 54 and rails["rails_redis_pool"] == 60
    assert "fleet_internal_address" not in rails  # only 0.0.0.0 listeners
    instance = load(out / "host_vars" / "gitlab.yml")
    assert instance["postgresql_max_connections"] == 400
    assert instance["fleet_internal_address"] == "10.10.1.30"
    # each variable says where it came from
    text = (out / "host_vars" / "sidekiq1.yml").read_text()
    assert "# sidekiq['routing_rules'] (docs-sidekiq.rb line 112)" in text
    # secrets are named, never written
    assert_no_secret(out)
    assert "gitlab_rails['db_password'] (docs-sidekiq.rb line 24): in Vault as " \
           "fleet_db_password" in printed
    assert "gitaly['configuration']['auth']['token'] (docs-gitlab.rb line 20)" in printed
    # GitLab's example names categories today's catalog no longer has: strict mode refuses
    assert "refuses the imported inventory" in printed and "hooks" in printed
    code, _, err = run(capsys, "plan", "-i", str(out))
    assert code == 2 and "hooks" in err


def test_documented_setup_plans_with_gitlab_compat(tmp_path, capsys):
    out, _, printed = _import_docs(capsys, tmp_path, "--gitlab-compat")
    for host in ("sidekiq1", "rails1", "gitlab"):  # every rails and sidekiq host
        assert load(out / "host_vars" / f"{host}.yml")["sidekiq_query_strict"] is False
    code, plan_out, err = run(capsys, "plan", "-i", str(out), "--json")
    assert code == 1, err  # an error finding, below
    plan = json.loads(plan_out)
    hosts = {h["host"]: h for h in plan["hosts"]}
    assert len(hosts["sidekiq1"]["processes"]) == 4 and len(hosts["gitlab"]["processes"]) == 1
    # "Routing rules must be the same across all GitLab nodes": the instance has none set
    differ = [f for f in plan["findings"] if f["code"] == "routing-rules-differ"]
    assert differ and "sidekiq1" in differ[0]["host"] and "rails1" in differ[0]["host"]
    assert "plan: fleetsim plan -i" in printed and "1 error(s)" in printed


# -- a real, long gitlab.rb ------------------------------------------------------------------


def _import_full(capsys, out: Path, *options: str) -> str:
    code, printed, err = run(capsys, "import", "gitlab-rb", "-o", str(out),
                             "--gitlab-version", "16.11", *options,
                             f"sidekiq1.corp.example={DATA / 'full-sidekiq.rb'}",
                             f"sidekiq2.corp.example={DATA / 'importers.rb'}")
    assert code == 0, err
    return printed


def test_a_real_gitlab_rb_gives_exactly_the_needed_settings(tmp_path, capsys):
    out = tmp_path / "inventory"
    printed = _import_full(capsys, out)
    assert groups_of(out) == {"sidekiq": ["sidekiq1.corp.example", "sidekiq2.corp.example"]}
    rules = [
        ["resource_boundary!=cpu&urgency=high", "high-urgency"],
        ["feature_category=database,gitaly,global_search&urgency=throttled", "throttled"],
        ["has_external_dependencies=true|feature_category=webhooks", "network-intensive"],
        ["feature_category=importers", None],
        ["*", "default"],
    ]
    assert load(out / "host_vars" / "sidekiq1.corp.example.yml") == {
        "sidekiq_fleet_flavor": "omnibus",
        "sidekiq_gitlab_version": "16.11",
        "fleet_internal_address": "10.20.2.11",
        "sidekiq_routing_rules": rules,  # from routing.rb (from_file)
        "sidekiq_queue_groups": ["high-urgency", "high-urgency", "throttled,network-intensive",
                                 "default,mailers"],
        "sidekiq_queue_selector": False,
        "sidekiq_negate": False,
        # the =begin comment's and the commented-out concurrency are not settings; the later
        # max_concurrency wins
        "sidekiq_min_concurrency": 10,
        "sidekiq_max_concurrency": 25,
        "sidekiq_exporter_metrics_enabled": True,
        "sidekiq_exporter_metrics_listen_address": "10.20.2.11",
        "fleet_sidekiq_metrics_port": 8082,
        "sidekiq_exporter_health_checks_enabled": True,
        "sidekiq_exporter_health_checks_listen_address": "0.0.0.0",
        "fleet_sidekiq_health_checks_port": 8092,
        "gitlab_external_url": "https://git.corp.example",
        "fleet_db_host": "10.20.1.10",
        "fleet_db_port": 6432,
        "fleet_db_user": "gitlab",
        "fleet_db_name": "gitlabhq_production",
        "fleet_redis_host": "10.20.1.20",
        "fleet_redis_port": 6379,
        "fleet_redis_database": 0,
        "fleet_gitaly_address": "tls://gitaly1.corp.example:9999",
    }
    importer = load(out / "host_vars" / "sidekiq2.corp.example.yml")
    assert importer["sidekiq_queue_selector"] is True and importer["sidekiq_concurrency"] == 10
    assert importer["sidekiq_routing_rules"] == rules
    assert len(importer["sidekiq_queue_groups"]) == 2
    # the version is a string: YAML would read an unquoted 16.10 as 16.1
    assert "sidekiq_gitlab_version: '16.11'" in (
        out / "host_vars" / "sidekiq2.corp.example.yml").read_text()
    assert_no_secret(out)
    # a secret whose value is not a literal is still named (and still not needed)
    assert "gitlab_rails['db_password'] (full-sidekiq.rb line 128)" in printed
    assert "gitlab_rails['ldap_servers'] (full-sidekiq.rb line 81)" in printed
    assert "0 error(s)" in printed


def test_the_imported_inventory_plans_simulates_and_migrates(tmp_path, capsys):
    out = tmp_path / "inventory"
    _import_full(capsys, out)
    code, plan_out, err = run(capsys, "plan", "-i", str(out), "--json")
    assert code == 0, err
    plan = json.loads(plan_out)
    assert plan["errors"] == 0
    processes = {h["host"]: len(h["processes"]) for h in plan["hosts"]}
    assert processes == {"sidekiq1.corp.example": 4, "sidekiq2.corp.example": 2}
    routing = {row["queue"]: row["listeners"] for row in plan["routing"]}
    assert routing["high-urgency"] == ["sidekiq1.corp.example/sidekiq@0",
                                       "sidekiq1.corp.example/sidekiq@1"]
    assert routing["projects_import_export_relation_import"] == [
        "sidekiq2.corp.example/sidekiq@0", "sidekiq2.corp.example/sidekiq@1"]
    code, sim_out, err = run(capsys, "simulate", "-i", str(out), "--workload", str(WORKLOAD),
                             "--duration", "30s", "--json")
    assert code in (0, 1), err  # SLOs met or not: the inventory itself was accepted
    assert json.loads(sim_out)["counters"]["arrived"] > 0
    code, mig_out, err = run(capsys, "migrate", "-i", str(out), "--to", str(TARGET),
                             "--workload", str(WORKLOAD), "--phase-gap", "10s", "--json")
    assert code in (0, 1), err
    assert json.loads(mig_out)["verdict"]["order"] == "safe"


def test_output_is_the_same_every_time(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    _import_full(capsys, first)
    _import_full(capsys, second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_text() == (second / rel).read_text()


# -- roles and enables --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "groups"), [
    ("external_url 'https://gitlab.example.com'\n",
     ("redis", "postgresql", "gitaly", "rails", "sidekiq")),  # no roles: a single node
    ("roles ['sidekiq_role']\n", ("sidekiq",)),
    ("roles(['application_role'])\nsidekiq['enable'] = false\ngitaly['enable'] = false\n",
     ("rails",)),
    ("roles ['application_role']\n", ("gitaly", "rails", "sidekiq")),
    ("roles ['application_role']\npuma['enable'] = false\ngitaly['enable'] = false\n",
     ("sidekiq",)),  # Sidekiq enabled, Puma disabled: a Sidekiq node
    ("gitlab_rails['enable'] = false\n", ("redis", "postgresql")),
    ("roles %w[redis_master_role redis_sentinel_role]\n", ("redis",)),
    ("roles ['postgres_role', 'consul_role']\n", ("postgresql",)),
    ("roles ['patroni_role']\n", ("postgresql",)),
    ("roles ['gitaly_role']\n", ("gitaly",)),
    ("roles ['consul_role']\n", ()),
    ("roles ['geo_primary_role']\n", ("redis", "postgresql", "gitaly", "rails", "sidekiq")),
    ("roles ['sidekiq_role']\nsidekiq['enable'] = false\n", ()),
    ("roles ['sidekiq_role']\nredis['enable'] = true\n", ("redis", "sidekiq")),
])
def test_groups_follow_roles_and_enables(tmp_path, text, groups):
    path = tmp_path / "gitlab.rb"
    path.write_text(text)
    assert import_host("node", str(path)).groups == groups


def test_a_host_in_no_group_is_listed_and_unknown_roles_are_noted(tmp_path, capsys):
    consul, odd = tmp_path / "consul.rb", tmp_path / "odd.rb"
    consul.write_text("roles ['consul_role']\n")
    odd.write_text("roles ['sidekiq_role', 'kas_role']\n")
    out = tmp_path / "inventory"
    code, printed, err = run(capsys, "import", "gitlab-rb", "-o", str(out),
                             f"consul1={consul}", f"sidekiq1={odd}")
    assert code == 0, err
    assert load(out / "hosts.yml")["all"]["hosts"] == {"consul1": {}}
    assert "note: sidekiq1: role kas_role is not one fleetsim knows" in printed
    assert "note: consul1: runs none of puma, sidekiq, postgresql, redis, gitaly" in printed


# -- refusals: needed settings that are not literals ------------------------------------------

REFUSED = [
    ("sidekiq['queue_groups'] = [\"#{prefix}-high\", 'default,mailers']",
     "a string with interpolation"),
    ("sidekiq['concurrency'] = threads_for(node)", "a method call (threads_for)"),
    ("sidekiq['concurrency'] = `nproc`.to_i", "a shell command in backticks"),
    ("sidekiq['max_concurrency'] = %x(nproc).to_i", "a shell command in backticks"),
    ("sidekiq['routing_rules'] = ROUTING_RULES", "a constant (ROUTING_RULES)"),
    ("gitlab_rails['db_host'] = ENV['DB_HOST']", "an environment variable (ENV[...])"),
    ("gitlab_rails['redis_port'] = ENV.fetch('REDIS_PORT', 6379)",
     "an environment variable (ENV.fetch)"),
    ("external_url url", "a variable or method call (url)"),
    ("sidekiq['max_concurrency'] = 10 + 10", "an expression (`+`)"),
    ("sidekiq['concurrency'] = 20 if node['cpu']['total'] > 4", "a condition (if ...)"),
    ("sidekiq['queue_groups'] << 'default,mailers'", "changed with `<<`"),
    ("sidekiq['queue_groups'].push('default,mailers')", "changed by a method call (.push)"),
    ("sidekiq['routing_rules'][0] = ['*', 'default']", "changed through a computed key"),
    ("sidekiq['negate'] ||= false", "changed with `||=`"),
    ("roles node['roles']", "a lookup (node[...])"),
    ("puma['enable'] = !ENV['SIDEKIQ_ONLY']", "an expression (`!`)"),
    ("gitlab_rails['repositories_storages'] = { 'default' => { 'gitaly_address' => "
     "\"tcp://#{gitaly}:8075\" } }", "a string with interpolation"),
    ("sidekiq['queue_groups'] = File.readlines('/etc/gitlab/groups').map(&:strip)",
     "a method call (File.readlines)"),
]


@pytest.mark.parametrize(("line", "reason"), REFUSED)
def test_a_needed_setting_that_is_not_a_literal_is_refused(tmp_path, capsys, line, reason):
    path = tmp_path / "sk1.rb"
    path.write_text(f"# node sk1\nroles ['sidekiq_role']\n{line}\n")
    out = tmp_path / "inventory"
    code, printed, err = run(capsys, "import", "gitlab-rb", "-o", str(out), f"sk1={path}")
    assert code == 2 and printed == "" and "Traceback" not in err
    assert err.startswith(f"fleetsim: error: {path}, line 3: ")
    assert "is not a literal value but " + reason in err
    assert line[:60] in err or line[-40:] in err  # the line (a long one: around the caret)
    assert "fix: write the value itself" in err
    assert not out.exists()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("roles ['sidekiq_role']\nif node['fqdn'] =~ /sk/\n  sidekiq['concurrency'] = 10\nend\n",
     3, "set inside a `if` block (line 2)"),
    ("roles ['sidekiq_role']\n%w[a b].each do |q|\n  sidekiq['queue_groups'] = [q]\nend\n",
     3, "set inside a `do` block (line 2)"),
    ("roles ['sidekiq_role']\nsidekiq['queue_selector'] = \"false\"\n", 2,
     "is \"false\", not true or false: Ruby reads every string, \"false\" too, as true"),
    ("roles ['sidekiq_role']\nsidekiq['queue_groups'] = 'default,mailers'\n", 2,
     "not an array of strings"),
    ("roles ['sidekiq_role']\nsidekiq['listen_port'] = 80820\n", 2, "not a TCP port"),
    ("roles ['sidekiq_role']\nsidekiq['routing_rules'] = '*'\n", 2,
     "The set of routing rule must be an array"),
    ("roles 42\n", 1, "not an array of role names"),
    ("from_file \"#{dir}/routing.rb\"\n", 1, "from_file loads a file whose path is not a "
     "literal"),
    ("from_file '/etc/gitlab/absent.rb'\n", 1, "from_file '/etc/gitlab/absent.rb': no such "
     "file here"),
])
def test_refusals_name_the_line(tmp_path, capsys, text, line, words):
    path = tmp_path / "gitlab.rb"
    path.write_text(text)
    out = tmp_path / "inventory"
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(out), f"sk1={path}")
    assert code == 2 and "Traceback" not in err, err
    assert f"{path}, line {line}: " in err and words in err and "fix:" in err
    assert not out.exists()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("roles ['sidekiq_role']\nsidekiq['queue_groups'] = ['a',\n", 2, "'[' is never closed"),
    ("external_url 'https://gitlab.example.com\n", 1, "this string never ends"),
    ("if true\nsidekiq['enable'] = true\n", 1, "never closed with `end`"),
    ("sidekiq['enable'] = true\nend\n", 2, "`end` closes no block here"),
    ("gitlab_rails['ldap_servers'] = YAML.load <<-EOS\n  main:\n", 1,
     "the heredoc <<-EOS is never closed"),
    ("nginx['custom'] = {\n 'a' => 1 ]\n", 2, "']' closes nothing here"),
])
def test_a_file_that_is_not_well_formed_is_refused(tmp_path, capsys, text, line, words):
    path = tmp_path / "gitlab.rb"
    path.write_text(text)
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(tmp_path / "inv"),
                       f"h={path}")
    assert code == 2 and "Traceback" not in err
    assert f"{path}, line {line}: " in err and words in err


def test_from_file_is_followed_and_a_loop_refused(tmp_path, capsys):
    (tmp_path / "a.rb").write_text("roles ['sidekiq_role']\nfrom_file '/etc/gitlab/b.rb'\n")
    (tmp_path / "b.rb").write_text("sidekiq['concurrency'] = 15\n")
    out = tmp_path / "inventory"
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(out), f"sk1={tmp_path / 'a.rb'}")
    assert code == 0, err
    assert load(out / "host_vars" / "sk1.yml")["sidekiq_concurrency"] == 15
    (tmp_path / "b.rb").write_text("from_file 'a.rb'\n")
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(tmp_path / "other"),
                       f"sk1={tmp_path / 'a.rb'}")
    assert code == 2 and f"{tmp_path / 'b.rb'}, line 1: " in err and "(a loop)" in err


# -- arguments and the output directory -------------------------------------------------------


@pytest.mark.parametrize(("args", "words"), [
    (["sk1"], "'sk1' is not HOST=FILE"),
    (["all={rb}"], "'all' cannot be a host name"),
    (["../x={rb}"], "'../x' cannot be a host name"),
    (["sk1={rb}", "sk1={rb}"], "host sk1 is given twice"),
    (["sk1={missing}"], "cannot read the gitlab.rb"),
    (["--gitlab-version", "seventeen", "sk1={rb}"], "is not a GitLab version"),
    (["--catalog", "{rb}", "sk1={rb}"], "--catalog"),
])
def test_bad_arguments(tmp_path, capsys, args, words):
    rb = tmp_path / "gitlab.rb"
    rb.write_text("roles ['sidekiq_role']\n")
    argv = [a.format(rb=rb, missing=tmp_path / "absent.rb") for a in args]
    out = tmp_path / "inventory"
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(out), *argv)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_non_empty_directory_needs_force(tmp_path, capsys):
    rb = tmp_path / "gitlab.rb"
    rb.write_text("roles ['sidekiq_role']\nsidekiq['concurrency'] = 10\n")
    out = tmp_path / "inventory"
    assert run(capsys, "import", "gitlab-rb", "-o", str(out), f"sk1={rb}")[0] == 0
    (out / "group_vars").mkdir()
    (out / "group_vars" / "all.yml").write_text("sidekiq_cpus: 4\n")
    (out / "host_vars" / "old.yml").write_text("x: 1\n")
    before = (out / "host_vars" / "sk1.yml").read_text()
    rb.write_text("roles ['sidekiq_role']\nsidekiq['concurrency'] = 12\n")
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(out), f"sk1={rb}")
    assert code == 2 and "the directory is not empty" in err and "--force" in err
    assert (out / "host_vars" / "sk1.yml").read_text() == before
    code, printed, err = run(capsys, "import", "gitlab-rb", "-o", str(out), "--force",
                             f"sk1={rb}")
    assert code == 0, err
    assert load(out / "host_vars" / "sk1.yml")["sidekiq_concurrency"] == 12
    assert (out / "group_vars" / "all.yml").exists() and (out / "host_vars" / "old.yml").exists()
    assert "left as they were (Ansible reads them too): group_vars, host_vars/old.yml" in printed
    file = tmp_path / "a-file"
    file.write_text("")
    code, _, err = run(capsys, "import", "gitlab-rb", "-o", str(file), f"sk1={rb}")
    assert code == 2 and "exists and is not a directory" in err


def test_catalog_is_copied_into_the_inventory(tmp_path, capsys):
    out = tmp_path / "inventory"
    printed = _import_full(capsys, out, "--catalog", str(CE_CATALOG))
    assert (out / ".catalog" / "all_queues_ce.yml").read_bytes() == CE_CATALOG.read_bytes()
    assert load(out / "host_vars" / "sidekiq1.corp.example.yml")[
        "sidekiq_worker_catalog"] == ".catalog/all_queues_ce.yml"
    assert "0 error(s)" in printed
    code, plan_out, err = run(capsys, "plan", "-i", str(out), "--json")
    assert code == 0, err
    assert Path(json.loads(plan_out)["catalog"]).resolve() == (
        out / ".catalog" / "all_queues_ce.yml").resolve()


def test_help_names_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["import", "gitlab-rb", "--help"])
    out = capsys.readouterr().out
    assert re.search(r"HOST=FILE", out) and "--gitlab-version" in out and "--catalog" in out
