"""Omnibus GitLab's ``gitlab.rb`` read back into an inventory (``fleetsim import gitlab-rb``).

The file is parsed, never run (:mod:`simulator.fleet.ruby`): every assignment to a setting
(``sidekiq['queue_groups'] = [...]``, ``gitlab_rails['object_store']['enabled'] = true``) and
the calls ``roles``, ``external_url``, ``git_data_dirs`` and ``from_file`` are recorded in file
order; everything else a real ``gitlab.rb`` holds (comments, other settings with any Ruby value,
``YAML.load <<-EOS`` heredocs, blocks) is skipped, as long as it is well-formed Ruby.

A setting the inventory needs (:data:`SETTINGS`, the roles and ``enable`` settings, Puma's
workers) must be a literal; one that is not (``"#{...}"``, a method call, backticks, a
constant, ``ENV[...]``, a line inside an ``if`` or a block) is refused with its file, line and
the line itself. Secrets are never written to the inventory: they are named, with the Vault
variable they belong in.

The host's groups follow Omnibus' own service logic (``roles`` enable service groups, an
explicit ``X['enable']`` wins, no service role means the single-node defaults): a host running
Sidekiq but not Puma is in ``sidekiq``, one running Puma in ``rails`` (both when it runs both),
and PostgreSQL, Redis and Gitaly put it in ``postgresql``, ``redis`` and ``gitaly``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import FleetError
from ..inputs import read_text
from ..routing.rules import ruby_inspect
from .inventory import GROUPS
from .ruby import Opaque, Statement, Token, find_opaque, literal_value, split_arguments, tokenize
from .ruby import statements as ruby_statements

__all__ = [
    "SECRETS",
    "SETTINGS",
    "GitlabRb",
    "ImportedHost",
    "import_host",
    "read_gitlab_rb",
    "render_inventory",
]

Path_ = tuple[str, ...]
#: Calls of gitlab.rb recorded as settings of their own name (``roles [...]`` -> ``roles``).
COMMANDS = ("roles", "external_url", "git_data_dirs")
#: How deep ``from_file`` may nest before the import stops (a file loading itself is refused).
MAX_FROM_FILE_DEPTH = 8
_MISSING = object()


@dataclass(frozen=True)
class Setting:
    """One assignment: where it is and what it assigns (a literal, possibly holding
    :class:`~simulator.fleet.ruby.Opaque` parts, or an Opaque)."""

    path: Path_
    value: Any
    token: Token  # the first token of the value (the statement's first for a change)

    @property
    def where(self) -> str:
        source = self.token.source
        file = os.path.basename(source.file) if source and source.file else "gitlab.rb"
        return f"{file} line {self.token.line}"


def label(path: Path_) -> str:
    """``('sidekiq', 'queue_groups')`` -> ``sidekiq['queue_groups']``; a call -> its name."""
    if path[0] in COMMANDS:
        return path[0]
    return path[0] + "".join(f"[{k!r}]" for k in path[1:])


def _navigate(value: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if isinstance(value, Opaque):
            return value
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _overlay(base: Any, keys: Sequence[str], value: Any) -> Any:
    """``base`` with ``value`` set at ``keys`` (missing levels are created, as Omnibus'
    settings are); an Opaque base stays Opaque."""
    if isinstance(base, Opaque):
        return base
    result = dict(base) if isinstance(base, dict) else {}
    if len(keys) == 1:
        result[keys[0]] = value
    else:
        result[keys[0]] = _overlay(result.get(keys[0], _MISSING), keys[1:], value)
    return result


@dataclass
class GitlabRb:
    """Every setting assignment of one gitlab.rb (and of the files it loads), in order."""

    path: str
    settings: list[Setting] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    statements: int = 0
    roots: dict[str, int] = field(default_factory=dict)  # setting root -> first line

    def lookup(self, path: Path_) -> tuple[Any, Setting | None]:
        """The value a path has after the whole file ran (``_MISSING`` when never set), and
        the last assignment that made it so. Ruby's order: a later assignment to a path or
        its parent replaces it; one to a deeper key sets that key inside it."""
        value: Any = _MISSING
        last: Setting | None = None
        for setting in self.settings:
            p = setting.path
            if p == path[: len(p)]:
                value, last = _navigate(setting.value, path[len(p):]), setting
            elif path == p[: len(path)]:
                value, last = _overlay(value, p[len(path):], setting.value), setting
        return value, last


def _blocked(statement: Statement) -> str | None:
    block = statement.block
    if block is None:
        return None
    return (f"set inside a `{block.text}` block (line {block.line}), which runs only when "
            "Ruby decides it does")


def _interpret(statement: Statement, rb: GitlabRb, depth: int,
               stack: tuple[str, ...]) -> None:
    tokens = statement.tokens
    first = tokens[0]
    rb.statements += 1
    if first.kind != "ident":
        return
    keys: list[str] = []
    j = 1
    while (j + 2 < len(tokens) and tokens[j].kind == "op" and tokens[j].text == "["
           and not tokens[j].space_before):
        key = tokens[j + 1]
        closing = tokens[j + 2]
        if key.kind in ("str", "sym") and not key.interpolated and closing.kind == "op" \
                and closing.text == "]":
            keys.append(str(key.value))
            j += 3
            continue
        if keys:  # sidekiq['routing_rules'][0] = ..., gitlab_rails[name] = ...
            rb.settings.append(Setting(
                (first.text, *keys),
                Opaque("changed through a computed key or an index", tokens[j]), first))
        return
    blocked = _blocked(statement)
    if keys:
        path = (first.text, *keys)
        rb.roots.setdefault(first.text, first.line)
        if j >= len(tokens):
            return  # only read
        op = tokens[j]
        if op.kind != "op":
            return
        if op.text == "=" and j + 1 < len(tokens):
            assigned = Opaque(blocked, first) if blocked else literal_value(tokens[j + 1:])
            rb.settings.append(Setting(path, assigned, tokens[j + 1]))
        elif op.text in ("||=", "&&=", "+=", "-=", "*=", "|=", "&=", "<<", "<<=", "/=",
                         "**=", "%=", "^=", ">>="):
            rb.settings.append(Setting(path, Opaque(f"changed with `{op.text}`", op), first))
        elif op.text in (".", "&.") and j + 1 < len(tokens):
            rb.settings.append(Setting(
                path, Opaque(f"changed by a method call (.{tokens[j + 1].text})", op), first))
        return
    name = first.text
    if name not in (*COMMANDS, "from_file"):
        return
    rest = tokens[1:]
    if rest and rest[0].kind == "op" and not (
            (rest[0].text == "(" and not rest[0].space_before)  # roles(['sidekiq_role'])
            or (rest[0].text in ("[", "(", "-") and rest[0].space_before)):  # roles ['x']
        return  # roles = ..., roles.each ...: not the call
    args = split_arguments(rest)
    if blocked:
        value: Any = Opaque(blocked, first)
    elif not args:
        value = Opaque("a call without an argument", first)
    elif len(args) == 1:
        value = literal_value(args[0])
    else:
        value = [literal_value(a) for a in args]
    if name == "from_file":
        _from_file(value, first, rb, depth, stack)
        return
    rb.roots.setdefault(name, first.line)
    rb.settings.append(Setting((name,), value, rest[0] if rest else first))


def _from_file(value: Any, token: Token, rb: GitlabRb, depth: int,
               stack: tuple[str, ...]) -> None:
    """``from_file 'PATH'``: read that file's settings at this point of the file."""
    opaque = find_opaque(value)
    if opaque is not None:
        raise opaque.token.error(
            f"from_file loads a file whose path is not a literal: {opaque.reason}; fleetsim "
            "cannot tell which file GitLab reads",
            hint="write the path itself (from_file '/etc/gitlab/extra.rb') in the copy you "
            "import, and put a copy of that file next to it")
    if not isinstance(value, str) or not value:
        raise token.error("from_file needs one file name", hint="from_file '/etc/gitlab/extra.rb'")
    here = Path(token.source.file if token.source and token.source.file else ".").parent
    candidates = [Path(value)] if os.path.isabs(value) else [here / value]
    candidates.append(here / os.path.basename(value))
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise token.error(
            f"from_file {value!r}: no such file here (looked for "
            f"{', '.join(str(c) for c in dict.fromkeys(candidates))})",
            hint=f"copy that file from the node next to the gitlab.rb you import (as "
            f"{os.path.basename(value)}): its settings count as if they were written here")
    if depth >= MAX_FROM_FILE_DEPTH:
        raise token.error(f"from_file nests more than {MAX_FROM_FILE_DEPTH} files deep",
                          hint="load the files from gitlab.rb itself")
    resolved = str(found.resolve())
    if resolved in stack:
        raise token.error(f"from_file {value!r} loads a file that is already being read "
                          "(a loop)", hint="remove the from_file line that closes the loop")
    _read_into(str(found), rb, depth + 1, (*stack, resolved))


def _read_into(path: str, rb: GitlabRb, depth: int, stack: tuple[str, ...]) -> None:
    text = read_text(path, error=FleetError, what="gitlab.rb",
                     hint="give HOST=FILE with the node's /etc/gitlab/gitlab.rb")
    rb.files.append(path)
    tokens, source = tokenize(text, path)
    for statement in ruby_statements(tokens, source):
        _interpret(statement, rb, depth, stack)


def read_gitlab_rb(path: str) -> GitlabRb:
    """Every setting assignment of the gitlab.rb at ``path`` (and the files it loads with
    ``from_file``), in the order Ruby would make them; nothing is run."""
    rb = GitlabRb(path)
    _read_into(path, rb, 0, (str(Path(path).resolve()),))
    return rb


# -- from settings to inventory variables ----------------------------------------------------


def _refuse_opaque(path: Path_, opaque: Opaque, example: str) -> FleetError:
    return opaque.token.error(
        f"{label(path)} is not a literal value but {opaque.reason}: fleetsim reads gitlab.rb "
        "without running it, so it cannot know this setting",
        hint=f"write the value itself in the copy of the file you import (e.g. "
        f"{label(path)}{' ' if path[0] in COMMANDS else ' = '}{example}), or remove the "
        "line if GitLab's default is what the node runs")


def _kind_error(setting: Setting, expected: str, example: str, why: str = "") -> FleetError:
    value = ruby_inspect(setting.value)
    if len(value) > 60:
        value = value[:50] + "..."
    path = setting.path
    return setting.token.error(
        f"{label(path)} is {value}, not {expected}{why}",
        hint=f"write {label(path)}{' ' if path[0] in COMMANDS else ' = '}{example}")


def _as_int(setting: Setting) -> int:
    value = setting.value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _kind_error(setting, "a whole number", "20")
    return value


def _as_port(setting: Setting) -> int:
    value = _as_int(setting)
    if not 0 < value < 65536:
        raise _kind_error(setting, "a TCP port (1 to 65535)", "8082")
    return value


def _as_bool(setting: Setting) -> bool:
    value = setting.value
    if isinstance(value, bool):
        return value
    why = (": Ruby reads every string, \"false\" too, as true" if isinstance(value, str)
           else "")
    raise _kind_error(setting, "true or false", "true (unquoted)", why)


def _as_str(setting: Setting) -> str:
    if not isinstance(setting.value, str):
        raise _kind_error(setting, "a string", "'VALUE'")
    return setting.value


def _as_str_list(setting: Setting) -> list[str]:
    value = setting.value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _kind_error(setting, "an array of strings", "['default,mailers']")
    return list(value)


def _as_rules(setting: Setting) -> list[Any]:
    value = setting.value
    if not isinstance(value, list):
        raise _kind_error(setting, "an array of [query, queue] pairs (GitLab: \"The set of "
                          "routing rule must be an array\")", "[['*', 'default']]")
    return value


def _as_roles(setting: Setting) -> list[str]:
    value = setting.value
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _kind_error(setting, "an array of role names", "['sidekiq_role']")
    return [_role_name(v) for v in value]


def _as_sentinels(setting: Setting) -> list[dict[str, Any]]:
    """gitlab_rails['redis_sentinels'] (``[{'host' => ..., 'port' => ...}]``, string or symbol
    keys) as fleet_redis_sentinels."""
    example = "[{'host' => '10.0.0.11', 'port' => 26379}]"
    value = setting.value
    if not isinstance(value, list):
        raise _kind_error(setting, "an array of {'host' => ..., 'port' => ...} hashes", example)
    out = []
    for entry in value:
        entry = {str(k).lstrip(":"): v for k, v in entry.items()} \
            if isinstance(entry, dict) else None
        host = entry.get("host") if entry else None
        port = entry.get("port", 26379) if entry else None
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)
        if not isinstance(host, str) or not host or isinstance(port, bool) \
                or not isinstance(port, int) or not 0 < port < 65536:
            raise _kind_error(setting, "an array of {'host' => ..., 'port' => ...} hashes",
                              example)
        out.append({"host": host, "port": port})
    return out


def _role_name(name: str) -> str:
    name = name.strip().replace("-", "_")
    return name if name.endswith("_role") else f"{name}_role"


#: What a value of each kind looks like, for the fix of a refusal.
_EXAMPLES: dict[Callable[[Setting], Any], str] = {
    _as_int: "20", _as_port: "8082", _as_bool: "true", _as_str: "'VALUE'",
    _as_str_list: "['default,mailers']", _as_rules: "[['*', 'default']]",
    _as_roles: "['sidekiq_role']", _as_sentinels: "[{'host' => '10.0.0.11', 'port' => 26379}]",
}


@dataclass(frozen=True)
class Mapping:
    """A gitlab.rb setting and the inventory variable it becomes."""

    path: Path_
    variable: str
    convert: Callable[[Setting], Any]


def _m(spec: str, variable: str, convert: Callable[[Setting], Any]) -> Mapping:
    return Mapping(tuple(spec.split(".")), variable, convert)


#: The gitlab.rb settings the inventory takes, and the variables they become (the order of
#: host_vars). Each must be a literal; nil means unset (the engine's or the role's default).
SETTINGS: tuple[Mapping, ...] = (
    _m("sidekiq.routing_rules", "sidekiq_routing_rules", _as_rules),
    _m("sidekiq.queue_groups", "sidekiq_queue_groups", _as_str_list),
    _m("sidekiq.queue_selector", "sidekiq_queue_selector", _as_bool),
    _m("sidekiq.negate", "sidekiq_negate", _as_bool),
    _m("sidekiq.concurrency", "sidekiq_concurrency", _as_int),
    _m("sidekiq.min_concurrency", "sidekiq_min_concurrency", _as_int),
    _m("sidekiq.max_concurrency", "sidekiq_max_concurrency", _as_int),
    _m("sidekiq.metrics_enabled", "sidekiq_exporter_metrics_enabled", _as_bool),
    _m("sidekiq.listen_address", "sidekiq_exporter_metrics_listen_address", _as_str),
    _m("sidekiq.listen_port", "fleet_sidekiq_metrics_port", _as_port),
    _m("sidekiq.health_checks_enabled", "sidekiq_exporter_health_checks_enabled", _as_bool),
    _m("sidekiq.health_checks_listen_address", "sidekiq_exporter_health_checks_listen_address",
       _as_str),
    _m("sidekiq.health_checks_listen_port", "fleet_sidekiq_health_checks_port", _as_port),
    _m("external_url", "gitlab_external_url", _as_str),
    _m("gitlab_rails.db_host", "fleet_db_host", _as_str),
    _m("gitlab_rails.db_port", "fleet_db_port", _as_port),
    _m("gitlab_rails.db_username", "fleet_db_user", _as_str),
    _m("gitlab_rails.db_database", "fleet_db_name", _as_str),
    _m("gitlab_rails.redis_host", "fleet_redis_host", _as_str),
    _m("gitlab_rails.redis_port", "fleet_redis_port", _as_port),
    _m("gitlab_rails.redis_database", "fleet_redis_database", _as_int),
    _m("gitlab_rails.redis_sentinels", "fleet_redis_sentinels", _as_sentinels),
    _m("redis.master_name", "fleet_redis_sentinel_master_name", _as_str),
    _m("gitlab_rails.repositories_storages.default.gitaly_address", "fleet_gitaly_address",
       _as_str),
    _m("git_data_dirs.default.gitaly_address", "fleet_gitaly_address", _as_str),
    _m("postgresql.max_connections", "postgresql_max_connections", _as_int),
    _m("redis.maxclients", "redis_maxclients", _as_int),
)

#: Secrets a gitlab.rb holds: never written to the inventory, named with the Vault-backed
#: variable they belong in (None: no variable of this project).
SECRETS: tuple[tuple[Path_, str | None], ...] = (
    (("gitlab_rails", "db_password"), "fleet_db_password"),
    (("gitlab_rails", "redis_password"), "fleet_redis_password"),
    (("gitlab_rails", "redis_sentinels_password"), "fleet_redis_sentinel_password"),
    (("gitlab_rails", "gitaly_token"), "fleet_gitaly_token"),
    (("gitlab_rails", "repositories_storages", "default", "gitaly_token"), "fleet_gitaly_token"),
    (("gitaly", "configuration", "auth", "token"), "fleet_gitaly_token"),
    (("gitaly", "auth_token"), "fleet_gitaly_token"),
    (("redis", "password"), "fleet_redis_password"),
    (("redis", "master_password"), None),
    (("postgresql", "sql_user_password"), None),
    (("postgresql", "sql_replication_password"), None),
    (("gitlab_rails", "ldap_servers"), None),
)

#: The services of the Omnibus package that make inventory groups.
SERVICES = ("puma", "sidekiq", "postgresql", "redis", "gitaly")
#: The services each role enables (Omnibus' service groups of the role); roles that manage no
#: service of these (consul, pgbouncer, monitoring, ...) enable none of them. The Geo roles
#: manage no services: the single-node defaults still apply with them.
ROLE_SERVICES: dict[str, tuple[str, ...]] = {
    "application_role": ("puma", "sidekiq", "gitaly"),
    "sidekiq_role": ("sidekiq",),
    "redis_master_role": ("redis",),
    "redis_replica_role": ("redis",),
    "redis_slave_role": ("redis",),
    "redis_sentinel_role": (),
    "postgres_role": ("postgresql",),
    "patroni_role": ("postgresql",),
    "pgbouncer_role": (),
    "consul_role": (),
    "monitoring_role": (),
    "pages_role": (),
    "spamcheck_role": (),
    "gitaly_role": ("gitaly",),
    "praefect_role": (),
}
NO_SERVICE_ROLES = ("geo_primary_role", "geo_secondary_role")
#: Services Omnibus' single-node defaults leave off when gitlab_rails['enable'] = false.
RAILS_SERVICES = ("puma", "sidekiq", "gitaly")
#: Where a node's own address may be read (``fleet_internal_address``), first found wins.
ADDRESS_SOURCES: tuple[Path_, ...] = (
    ("sidekiq", "listen_address"),
    ("sidekiq", "health_checks_listen_address"),
    ("postgresql", "listen_address"),
    ("redis", "bind"),
    ("gitaly", "configuration", "listen_addr"),
    ("gitaly", "listen_addr"),
    ("puma", "listen"),
    ("gitlab_workhorse", "listen_addr"),
    ("node_exporter", "listen_address"),
)
#: Threads of a Puma worker besides its request threads: the main thread and Action Cable's 4
#: workers (simulator.routing.defaults: rails_db_pool's default of 36 is 4 workers x 9).
PUMA_EXTRA_THREADS = 1 + 4
#: Redis connections a producer process may hold (Sidekiq 7's client pool).
PUMA_REDIS_PER_PROCESS = 10
#: Other GitLab versions' Sidekiq settings the import does not read (named in a note).
UNREAD_ROOTS = {
    "sidekiq_cluster": "sidekiq_cluster[...] (GitLab 13 and older, replaced by sidekiq[...] "
    "in 14.0) is not imported",
}


@dataclass
class ImportedHost:
    """One host as the inventory will describe it."""

    name: str
    file: str
    groups: tuple[str, ...]
    services: dict[str, str]  # service -> why it runs (enabled ones only)
    variables: dict[str, Any]
    origins: dict[str, str]  # variable -> the setting and line it came from
    secrets: list[str]
    notes: list[str]


class _Reader:
    """Typed, literal values of one gitlab.rb's settings; refuses what is not a literal."""

    def __init__(self, rb: GitlabRb) -> None:
        self.rb = rb

    def get(self, path: Path_, convert: Callable[[Setting], Any]) -> tuple[Any, Setting] | None:
        value, setting = self.rb.lookup(path)
        if value is _MISSING or setting is None:
            return None
        opaque = find_opaque(value)
        if opaque is not None:
            raise _refuse_opaque(path, opaque, _EXAMPLES.get(convert, "VALUE"))
        if value is None:
            return None  # nil: the setting's default
        shown = Setting(path, value, setting.token)
        return convert(shown), shown

    def present(self, path: Path_) -> Setting | None:
        """The last assignment of ``path`` when it holds anything but nil (literal or not)."""
        value, setting = self.rb.lookup(path)
        if value is _MISSING or value is None or value == "":
            return None
        return setting


def _services(reader: _Reader, notes: list[str]) -> dict[str, str]:
    """The services that run, each with why (Omnibus: roles enable service groups; an
    explicit ``X['enable']`` wins; no service role means the single-node defaults)."""
    roles_found = reader.get(("roles",), _as_roles)
    roles = roles_found[0] if roles_found else []
    roles_where = f"roles {roles} ({roles_found[1].where})" if roles_found else ""
    for role in roles:
        if role not in ROLE_SERVICES and role not in NO_SERVICE_ROLES:
            notes.append(f"role {role} is not one fleetsim knows: read as enabling none of "
                         f"{', '.join(SERVICES)}")
    managing = [r for r in roles if r not in NO_SERVICE_ROLES]
    rails = reader.get(("gitlab_rails", "enable"), _as_bool)
    running: dict[str, str] = {}
    for service in SERVICES:
        explicit = reader.get((service, "enable"), _as_bool)
        if explicit is not None:
            if explicit[0]:
                running[service] = f"{service}['enable'] = true ({explicit[1].where})"
            continue
        by_role = [r for r in managing if service in ROLE_SERVICES.get(r, ())]
        if by_role:
            running[service] = roles_where
        elif not managing:
            if rails is not None and rails[0] is False and service in RAILS_SERVICES:
                continue
            running[service] = "GitLab's single-node default (no service role)"
    return running


def _groups(running: dict[str, str]) -> tuple[str, ...]:
    member = {
        "rails": "puma" in running,
        "sidekiq": "sidekiq" in running,
        "postgresql": "postgresql" in running,
        "redis": "redis" in running,
        "gitaly": "gitaly" in running,
    }
    return tuple(g for g in GROUPS if member.get(g))


def _address(reader: _Reader) -> tuple[str, str] | None:
    """The node's own address from a listen setting that names one (not a wildcard, not
    loopback), and where it was read."""
    for path in ADDRESS_SOURCES:
        value, setting = reader.rb.lookup(path)
        if not isinstance(value, str) or setting is None:
            continue
        for item in re.split(r"[\s,]+", value.strip()):
            host = _host_of(item)
            if host:
                return host, f"{label(path)} ({setting.where})"
    return None


def _host_of(item: str) -> str | None:
    if not item or item.startswith(("/", "unix:")):
        return None
    if item.startswith("["):
        host = item[1: item.find("]")] if "]" in item else item[1:]
    elif item.count(":") == 1:
        host = item.split(":", 1)[0]
    else:
        host = item
    host = host.strip()
    if host in ("", "*", "0.0.0.0", "::", "localhost", "::1") or host.startswith("127."):
        return None
    return host


def import_host(name: str, path: str, *, gitlab_version: str | None = None,
                catalog: str | list[str] | None = None,
                query_strict: bool = True) -> ImportedHost:
    """Read host ``name``'s gitlab.rb at ``path`` into its groups and inventory variables.

    ``catalog`` (relative to the inventory) becomes ``sidekiq_worker_catalog`` and
    ``query_strict=False`` ``sidekiq_query_strict: false`` on rails and sidekiq hosts;
    ``gitlab_version`` is ``sidekiq_gitlab_version`` on every host."""
    rb = read_gitlab_rb(path)
    reader = _Reader(rb)
    notes: list[str] = []
    running = _services(reader, notes)
    groups = _groups(running)
    variables: dict[str, Any] = {"sidekiq_fleet_flavor": "omnibus"}
    origins: dict[str, str] = {
        "sidekiq_fleet_flavor": "an Omnibus GitLab node (imported from its gitlab.rb)"}
    if gitlab_version:
        variables["sidekiq_gitlab_version"] = gitlab_version
        origins["sidekiq_gitlab_version"] = "--gitlab-version"
    address = _address(reader)
    if address:
        variables["fleet_internal_address"] = address[0]
        origins["fleet_internal_address"] = address[1]
    else:
        notes.append("fleet_internal_address not set: no listen setting names this node's "
                     "own address (only wildcards, loopback or nothing); add it in "
                     f"host_vars/{name}.yml")
    for mapping in SETTINGS:
        found = reader.get(mapping.path, mapping.convert)
        if found is None or mapping.variable in variables:
            continue
        variables[mapping.variable] = found[0]
        origins[mapping.variable] = f"{label(mapping.path)} ({found[1].where})"
    if "rails" in groups:
        workers = reader.get(("puma", "worker_processes"), _as_int)
        if workers is not None:
            threads = reader.get(("puma", "max_threads"), _as_int)
            per_worker = (threads[0] if threads else 4) + PUMA_EXTRA_THREADS
            processes = max(workers[0], 1)
            variables["rails_db_pool"] = processes * per_worker
            origins["rails_db_pool"] = (
                f"puma['worker_processes'] {workers[0]} ({workers[1].where}) x "
                f"({threads[0] if threads else 4} puma['max_threads'] + 1 main thread + 4 "
                "Action Cable workers)")
            variables["rails_redis_pool"] = processes * PUMA_REDIS_PER_PROCESS
            origins["rails_redis_pool"] = (
                f"puma['worker_processes'] {workers[0]} x {PUMA_REDIS_PER_PROCESS} (Sidekiq "
                "7's client pool per process)")
    if set(groups) & {"rails", "sidekiq"}:
        if catalog:
            variables["sidekiq_worker_catalog"] = catalog
            origins["sidekiq_worker_catalog"] = "--catalog (copied into the inventory)"
        if not query_strict:
            variables["sidekiq_query_strict"] = False
            origins["sidekiq_query_strict"] = "--gitlab-compat"
    secrets = []
    for secret_path, variable in SECRETS:
        setting = reader.present(secret_path)
        if setting is not None:
            where = f"{label(secret_path)} ({setting.where})"
            secrets.append(f"{where}: in Vault as {variable}" if variable else where)
    for root, note in UNREAD_ROOTS.items():
        if root in rb.roots:
            notes.append(f"{note} (line {rb.roots[root]})")
    if not groups:
        notes.append(f"runs none of {', '.join(SERVICES)}: in no group (listed under all)")
    return ImportedHost(name, path, groups, running, variables, origins, secrets, notes)


# -- the inventory files ---------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Lists of scalars (a routing rule, a queue group list) on one line each."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> Any:
    flow = all(not isinstance(v, (list, dict)) for v in data) and len(data) <= 3
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=100, allow_unicode=True)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in text.splitlines())


def render_inventory(hosts: Sequence[ImportedHost]) -> dict[str, str]:
    """The inventory's files (relative path -> text): ``hosts.yml`` with the groups, and
    ``host_vars/HOST.yml`` with each host's variables, each commented with the gitlab.rb
    setting and line it came from."""
    children: dict[str, Any] = {}
    for group in GROUPS:
        members = [h.name for h in hosts if group in h.groups]
        if members:
            children[group] = {"hosts": {m: {} for m in members}}
    ungrouped: dict[str, Any] = {h.name: {} for h in hosts if not h.groups}
    inventory: dict[str, Any] = {"all": {}}
    if ungrouped:
        inventory["all"]["hosts"] = ungrouped
    if children:
        inventory["all"]["children"] = children
    header = (
        "Written by `fleetsim import gitlab-rb` from these gitlab.rb files (read, never "
        "run):\n" + "".join(f"  {h.name}: {h.file}\n" for h in hosts)
        + "Groups follow each file's roles and X['enable'] settings; each host's variables "
        "are in\nhost_vars/HOST.yml, commented with the line they came from."
    )
    files = {"hosts.yml": "---\n" + _comment(header) + _dump(inventory)}
    for host in hosts:
        lines = ["---\n", _comment(
            f"{host.name}: imported by `fleetsim import gitlab-rb` from {host.file}.\n"
            + (f"Groups: {', '.join(host.groups)}" if host.groups else "Groups: none")
            + "".join(f"\n  {s}: {why}" for s, why in host.services.items()))]
        for key, value in host.variables.items():
            lines.append("\n" + _comment(host.origins.get(key, "")) + _dump({key: value}))
        if host.secrets:
            lines.append("\n" + _comment(
                "Secrets in the gitlab.rb, not written here (keep them in Vault):\n"
                + "\n".join(f"  {s}" for s in host.secrets)))
        files[f"host_vars/{host.name}.yml"] = "".join(lines)
    return files
