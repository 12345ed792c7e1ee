"""No task hands a secret to a remote command through `environment:`: Ansible puts those values on
the remote shell's command line (visible in ps and in -vvv). Secrets go through 0600 files or
stdin instead. Also: host key checking is never switched off for every inventory."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRET = re.compile(r"pass(word|wd)?|token|secret|_key\b", re.I)
NOT_SECRET = re.compile(r"password_encryption", re.I)  # a PostgreSQL setting


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!vault", lambda loader, node: "<vaulted>")


def _environments(node, where: str):
    if isinstance(node, dict):
        env = node.get("environment")
        if isinstance(env, dict):
            yield where, env
        for key, value in node.items():
            yield from _environments(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _environments(value, f"{where}[{index}]")


def test_no_secret_in_a_task_environment():
    found = []
    for path in sorted(
        p for d in ("roles", "playbooks", "molecule") for p in (ROOT / d).rglob("*.yml")
    ):
        if path.name == "vault.yml":
            continue
        data = yaml.load(path.read_text(), Loader=_Loader)
        for where, env in _environments(data, path.relative_to(ROOT).as_posix()):
            for name, value in env.items():
                text = NOT_SECRET.sub("", f"{name} {value}")
                if SECRET.search(text):
                    found.append(f"{where}: {name}")
    assert not found, "secrets passed through environment: " + ", ".join(found)


def test_host_key_checking_is_not_disabled_globally():
    config = configparser.ConfigParser()
    config.read(ROOT / "ansible.cfg")
    assert config.get("defaults", "host_key_checking", fallback="True").lower() != "false"
