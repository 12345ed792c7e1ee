"""The checker: what gitlab-ctl reconfigure would refuse, and any drift between the file and the
inventory, found without GitLab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from omnibus_helpers import DB_PASSWORD, HARNESS, ROOT, inputs, recorded, recorded_text

from simulator.omnibus.gitlab_rb import build_gitlab_rb
from simulator.omnibus.known import OmnibusError
from simulator.omnibus.validate import check, check_known, errors, record, syntax_check


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_removed_settings_stop_it_with_gitlabs_own_message(tmp_path):
    got = recorded_text("sidekiq['queue_selector'] = true\nsidekiq['negate'] = false\n", tmp_path)
    findings = check_known(got, "17.0")
    assert codes(errors(findings)) == ["omnibus-removed-setting", "omnibus-removed-setting",
                                       "omnibus-reconfigure-aborts"]
    assert "* sidekiq['queue_selector'] has been deprecated since 15.9 and was removed in 17.0." \
        in findings[0].message
    # false counts too: GitLab skips only nil and {}
    assert "sidekiq['negate']" in findings[1].message
    assert findings[2].message.startswith(
        "Removed configurations found in gitlab.rb. Aborting reconfigure.")
    assert "gitlab.rb:1" in findings[0].message
    older = check_known(got, "16.11")
    assert not errors(older)
    assert codes(older) == ["omnibus-deprecated-setting", "omnibus-deprecated-setting"]


def test_unknown_names_and_keys_are_errors(tmp_path):
    got = recorded_text("sidekiq['concurency'] = 5\nsidekiqq['x'] = 1\nroles ['gitaly_role']\n",
                        tmp_path)
    findings = check_known(got, "17.5")
    assert codes(findings) == ["omnibus-unknown-setting", "omnibus-unknown-top-level",
                               "omnibus-unknown-role"]
    assert "gitlab.rb:2" in findings[1].message
    assert "exists from 17.6" in findings[2].message


def test_a_setting_newer_than_the_release_is_an_error(tmp_path):
    got = recorded_text("sidekiq['exporter_tls_enabled'] = true\n", tmp_path)
    assert codes(check_known(got, "15.1")) == ["omnibus-setting-too-new"]
    assert not check_known(got, "15.2")


def test_a_value_that_is_not_data_is_an_error(tmp_path):
    got = recorded_text("sidekiq['queue_groups'] = [1..3]\n", tmp_path)
    assert "omnibus-not-plain-data" in codes(check_known(got, "17.5"))


def test_drift_from_the_inventory_is_found(tmp_path):
    rb = build_gitlab_rb(inputs(["sidekiq"]))
    text = rb.render()
    edited = (text.replace("sidekiq['concurrency'] = 20", "sidekiq['concurrency'] = 25")
              .replace("sidekiq['listen_port'] = 8082\n", "")
              + "sidekiq['interval'] = 5\n")
    findings = check(recorded_text(edited, tmp_path), expected=rb)
    assert codes(findings) == ["omnibus-differs", "omnibus-missing", "omnibus-unexpected"]
    assert "sidekiq['concurrency'] is 25" in findings[0].message


def test_a_secret_that_differs_is_named_not_shown(tmp_path):
    rb = build_gitlab_rb(inputs(["sidekiq"]))
    text = rb.render().replace(
        "gitlab_rails['db_password'] = ", "gitlab_rails['db_password'] = 'other' || ")
    findings = check(recorded_text(text, tmp_path), expected=rb)
    assert codes(findings) == ["omnibus-differs"]
    assert "fleet_db_password (secret, not shown)" in findings[0].message
    assert "other" not in findings[0].message and DB_PASSWORD not in findings[0].message


def test_the_operators_gitlab_rb_loads_the_managed_file(tmp_path):
    """gitlab.rb keeps the operator's lines and loads the managed file at its end, as the role
    writes it; the harness follows from_file."""
    rb = build_gitlab_rb(inputs(["sidekiq"]))
    managed = tmp_path / "sidekiq-fleet.rb"
    managed.write_text(rb.render())
    own = tmp_path / "gitlab.rb"
    own.write_text(
        "# the operator's own settings\n"
        "letsencrypt['enable'] = false\n"
        "sidekiq['log_format'] = 'json'\n"
        "# BEGIN sidekiq-fleet: settings from the inventory (gitlab_omnibus role)\n"
        'from_file "/etc/gitlab/sidekiq-fleet.rb"\n'
        "# END sidekiq-fleet: settings from the inventory (gitlab_omnibus role)\n")
    syntax_check(own)
    got = record(own, harness=HARNESS, maps=[("/etc/gitlab/sidekiq-fleet.rb", str(managed))])
    assert got["files"] == [str(own), str(managed)]
    assert got["settings"]["letsencrypt"] == {"enable": False}
    known = check_known(got, "17.11")
    assert not errors(known)
    # letsencrypt's keys are not in the data: said, not refused
    assert codes(known) == ["omnibus-unchecked"]
    # the operator's own settings are not the inventory's: compared alone they are extra
    assert codes(errors(check(got, expected=rb))) == ["omnibus-unexpected", "omnibus-unexpected"]


def test_ruby_errors_are_reported_with_the_file(tmp_path):
    path = tmp_path / "gitlab.rb"
    path.write_text("sidekiq['queue_groups'] = [\n")
    with pytest.raises(OmnibusError, match="not valid Ruby"):
        syntax_check(path)
    path.write_text("sidekiq['x'].fetch(1)\n")
    with pytest.raises(OmnibusError, match=r"gitlab.rb:1: NoMethodError"):
        record(path, harness=HARNESS)


def test_the_command_line_checks_any_gitlab_rb(tmp_path):
    path = tmp_path / "gitlab.rb"
    path.write_text("sidekiq['negate'] = true\n")
    argv = [sys.executable, "-m", "simulator.omnibus.validate", str(path), "--harness",
            str(HARNESS)]
    old = subprocess.run([*argv, "--version", "16.11"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert old.returncode == 0, old.stdout + old.stderr
    new = subprocess.run([*argv, "--version", "17.0"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert new.returncode == 1
    assert "Removed configurations found in gitlab.rb. Aborting reconfigure." in new.stdout


def test_the_harness_records_every_kind_of_assignment(tmp_path):
    got = recorded_text(
        "external_url 'https://gitlab.example.com'\n"
        "roles(['sidekiq_role'])\n"
        "git_data_dirs({ 'default' => { 'gitaly_address' => 'tcp://g:8075' } })\n"
        "gitlab_rails['object_store']['objects']['lfs']['bucket'] = 'lfs'\n"
        "gitlab_rails['ldap_servers'] = { 'main' => { 'port' => 389 } }\n"
        "gitlab_rails['ldap_servers']['main']['port'] = 636\n"
        "gitaly['configuration'] = { auth: { token: 't' } }\n"
        "x = sidekiq['queue_groups'] = ['*'] * 2\n"
        "sidekiq['shutdown_timeout'] = x.length * 10\n", tmp_path)
    assert got["settings"] == {
        "external_url": "https://gitlab.example.com",
        "roles": ["sidekiq_role"],
        "git_data_dirs": {"default": {"gitaly_address": "tcp://g:8075"}},
        "gitlab_rails": {"object_store": {"objects": {"lfs": {"bucket": "lfs"}}},
                         "ldap_servers": {"main": {"port": 636}}},
        "gitaly": {"configuration": {"auth": {"token": "t"}}},
        "sidekiq": {"queue_groups": ["*", "*"], "shutdown_timeout": 20},
    }
    paths = [(tuple(a["path"]), a["line"]) for a in got["assignments"]]
    assert (("gitlab_rails", "ldap_servers", "main", "port"), 6) in paths
    json.dumps(got)  # plain JSON all the way down


def test_recorded_settings_of_a_rendered_node_pass(tmp_path):
    rb = build_gitlab_rb(inputs(["rails", "sidekiq"]))
    assert check(recorded(rb, tmp_path), expected=rb) == []
