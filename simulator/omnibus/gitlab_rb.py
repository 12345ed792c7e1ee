"""The ``gitlab.rb`` settings an Omnibus node gets from the inventory, and their Ruby text.

One node may hold several components; each adds its settings, as GitLab's documentation
writes them:

- ``postgresql``, ``redis``, ``gitaly`` (the data node of "Configure an external Sidekiq
  instance"): PostgreSQL listening on TCP with ``md5_auth_cidr_addresses`` from the rails and
  sidekiq hosts' ``fleet_internal_address`` (``/32``, ``/128``), no trust CIDRs; Redis bind,
  port and password; Gitaly's listener and auth token, ``gitlab_rails['gitaly_token']``;
- ``sidekiq`` (an external Sidekiq node): only Sidekiq runs (``roles ['sidekiq_role']``, as the
  reference architectures do), the routing rules, queue groups and threads, the metrics and
  health servers, and what every GitLab application node needs (the ``client`` settings below);
- ``rails``: Puma without Sidekiq or Gitaly (``roles ['application_role']``), the same routing
  rules (rules that differ between rails and sidekiq hosts are an error of the fleet checks).

Client settings (rails and sidekiq): ``external_url``, the database, Redis and Gitaly
connections and repository storages, pinned UIDs/GIDs, the container registry's API URL and
key path, LDAP servers and sync schedules, OmniAuth providers (SAML Group Sync).

What changed with GitLab releases is decided here from the node's ``sidekiq_gitlab_version``:
Gitaly's ``configuration`` hash (15.10; the flat keys before), ``gitaly_role`` (17.6),
``repositories_storages`` in place of ``git_data_dirs`` (deprecated 17.8, removed 18.0), and
threads: ``concurrency`` from 16.9 (``sv-sidekiq-run.erb`` passes ``-c`` from
``16.9.0+ce.0``), ``min_concurrency``/``max_concurrency`` before. Settings the inventory asks
for but the release removed (``queue_selector`` on 17.0) are rendered as asked: the checker
(:mod:`.validate`) refuses them with GitLab's own message.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..routing.defaults import DEFAULT_GITLAB_VERSION
from .known import OmnibusError, Version, known_settings, label, parse_version, show

__all__ = [
    "COMPONENTS",
    "FROM_FILE",
    "GitlabRb",
    "Setting",
    "build_gitlab_rb",
    "default_version",
    "ruby_literal",
]

#: The inventory groups that become gitlab.rb settings, in the order of the file.
COMPONENTS = ("postgresql", "redis", "gitaly", "rails", "sidekiq")
#: Where the managed file lives on the node, and the line gitlab.rb loads it with.
MANAGED_PATH = "/etc/gitlab/sidekiq-fleet.rb"
FROM_FILE = f'from_file "{MANAGED_PATH}"'
GITALY_CONFIGURATION = (15, 10)
GITALY_ROLE = (17, 6)
REPOSITORIES_STORAGES = (17, 8)
FIXED_CONCURRENCY = (16, 9)
EXPORTER_TLS = (15, 2)
DEFAULT_GITALY_STORAGE = {"name": "default", "path": "/var/opt/gitlab/git-data/repositories"}


@dataclass(frozen=True)
class Setting:
    """One assignment of the file. ``secret`` names the variable a secret value comes from
    (the review copy shows that name instead of the value)."""

    path: tuple[str, ...]
    value: Any
    secret: str | None = None

    def label(self) -> str:
        return label(self.path)


@dataclass
class GitlabRb:
    """The settings of one node, in sections (a comment each)."""

    host: str
    version: Version
    components: tuple[str, ...]
    sections: list[tuple[str, list[Setting]]] = field(default_factory=list)

    def add(self, title: str, settings: Sequence[Setting]) -> None:
        if settings:
            self.sections.append((title, list(settings)))

    def settings(self) -> list[Setting]:
        return [s for _, settings in self.sections for s in settings]

    def tree(self, *, redacted: bool = False) -> dict[str, Any]:
        """The settings as the recording harness reports them: ``{'sidekiq': {'x': ...}}``,
        one-argument calls (``external_url``, ``roles``) at the top."""
        tree: dict[str, Any] = {}
        for setting in self.settings():
            *parents, last = setting.path
            node = tree
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = _shown(setting, redacted)
        return tree

    def secret_paths(self) -> dict[tuple[str, ...], str]:
        return {s.path: s.secret for s in self.settings() if s.secret}

    def render(self, *, redacted: bool = False, header: Sequence[str] = ()) -> str:
        lines = [f"# {line}" if line else "#" for line in header]
        lines += [
            f"# sidekiq-fleet: gitlab.rb settings of {self.host} (GitLab {show(self.version)}; "
            f"{', '.join(self.components)}).",
            f"# /etc/gitlab/gitlab.rb loads this file with: {FROM_FILE}",
            "# Change the inventory and run the playbook, not this file.",
        ]
        if redacted:
            lines.append("# Review copy: secrets are replaced by the variable they come from.")
        for title, settings in self.sections:
            lines += ["", f"## {title}"]
            for setting in settings:
                value = _shown(setting, redacted)
                if len(setting.path) == 1 and isinstance(value, (dict, list)):
                    # git_data_dirs({...}): without the parentheses Ruby reads a block
                    lines.append(f"{setting.path[0]}({ruby_literal(value)})")
                elif len(setting.path) == 1:
                    lines.append(f"{setting.path[0]} {ruby_literal(value)}")
                else:
                    symbols = setting.path == ("gitaly", "configuration")
                    lines.append(f"{setting.label()} = "
                                 f"{ruby_literal(value, symbol_keys=symbols)}")
        return "\n".join(lines) + "\n"


_SECRET_KEY = re.compile(r"(password|secret|token|private_key|_key$)", re.I)


def _redact(value: Any, variable: str) -> Any:
    """A structure's secret parts (keys that name a password, secret, token or key) replaced."""
    if isinstance(value, dict):
        return {k: (f"[secret: {variable}]" if _SECRET_KEY.search(str(k)) and
                    isinstance(v, str) and v else _redact(v, variable))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, variable) for v in value]
    return value


def _shown(setting: Setting, redacted: bool) -> Any:
    if not (redacted and setting.secret):
        return setting.value
    if isinstance(setting.value, (dict, list)):
        return _redact(setting.value, setting.secret)
    return f"[secret: {setting.secret}]"


# -- Ruby literals -------------------------------------------------------------------------------

_SYMBOL = re.compile(r"[a-z_][A-Za-z0-9_]*")


def ruby_string(text: str) -> str:
    """A single-quoted Ruby string: no interpolation, only ``\\`` and ``'`` escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ruby_literal(value: Any, *, symbol_keys: bool = False, indent: int = 0) -> str:
    """``value`` (plain data: str, int, float, bool, None, list, dict) as a Ruby literal.
    Hashes use string keys (``'key' => value``), or ``key: value`` with ``symbol_keys`` (as
    GitLab writes Gitaly's ``configuration``). Long structures go on several lines."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return ruby_string(value)
    inner = " " * (indent + 2)
    if isinstance(value, (list, tuple)):
        items = [ruby_literal(v, symbol_keys=symbol_keys, indent=indent + 2) for v in value]
        flat = "[" + ", ".join(items) + "]"
        if len(flat) <= 80 and "\n" not in flat:
            return flat
        return "[\n" + "".join(f"{inner}{item},\n" for item in items) + " " * indent + "]"
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            key = str(key)
            rendered = ruby_literal(item, symbol_keys=symbol_keys, indent=indent + 2)
            if symbol_keys and _SYMBOL.fullmatch(key):
                pairs.append(f"{key}: {rendered}")
            else:
                pairs.append(f"{ruby_string(key)} => {rendered}")
        flat = "{ " + ", ".join(pairs) + " }" if pairs else "{}"
        if len(flat) <= 80 and "\n" not in flat:
            return flat
        return "{\n" + "".join(f"{inner}{pair},\n" for pair in pairs) + " " * indent + "}"
    raise OmnibusError(f"cannot write {type(value).__name__} {value!r} as a gitlab.rb value",
                       hint="give plain strings, numbers, booleans, lists and mappings")


# -- inputs --------------------------------------------------------------------------------------


class _Inputs:
    """The host's variables, with errors that name the variable."""

    def __init__(self, values: Mapping[str, Any], host: str) -> None:
        self.values = values
        self.host = host

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name, default)
        return default if value is None else value

    def need(self, name: str, why: str) -> Any:
        value = self.values.get(name)
        if value in (None, "", [], {}):
            raise OmnibusError(f"{name} is not set ({why})", rule=f"host {self.host}",
                               hint=f"set {name} in the inventory (group_vars or host_vars)")
        return value

    def string(self, name: str, default: str = "") -> str:
        value = self.get(name, default)
        if not isinstance(value, str):
            raise OmnibusError(f"{name} must be a string, not {value!r}",
                               rule=f"host {self.host}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        if not isinstance(value, bool):
            raise OmnibusError(f"{name} must be true or false, not {value!r}",
                               rule=f"host {self.host}")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)) or \
                (isinstance(value, str) and not value.isdigit()):
            raise OmnibusError(f"{name} must be a whole number, not {value!r}",
                               rule=f"host {self.host}")
        return int(value)


def default_version() -> str:
    """The release a fleet runs when ``sidekiq_gitlab_version`` is unset: the routing engine's
    default, the current release (fleetsim plans with the same)."""
    return DEFAULT_GITLAB_VERSION


def _cidr(address: str) -> str:
    """A client address as a one-host CIDR (``/32``, ``/128``); a CIDR stays as it is."""
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise OmnibusError(
            f"{address!r} is not an IP address: postgresql['md5_auth_cidr_addresses'] takes "
            "addresses", rule="fleet_internal_address",
            hint="give every rails and sidekiq host its IP address in fleet_internal_address"
        ) from None
    return str(network)


def _pg_md5(password: str, user: str) -> str:
    """``gitlab-ctl pg-password-md5 USER``: md5 of the password followed by the user name."""
    return hashlib.md5((password + user).encode()).hexdigest()


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- components ----------------------------------------------------------------------------------


def _services(v: _Inputs, components: tuple[str, ...], version: Version) -> list[Setting]:
    roles: list[str] = []
    out: list[Setting] = []
    if "postgresql" in components:
        roles.append("postgres_role")
    if "redis" in components:
        roles.append("redis_master_role")
    if "gitaly" in components:
        if version >= GITALY_ROLE:
            roles.append("gitaly_role")
        else:
            out.append(Setting(("gitaly", "enable"), True))
    if "rails" in components:
        roles.append("application_role")
        if "gitaly" not in components:
            out.append(Setting(("gitaly", "enable"), False))
        if "sidekiq" not in components:
            out.append(Setting(("sidekiq", "enable"), False))
    if "sidekiq" in components:
        roles.append("sidekiq_role")
    return [Setting(("roles",), roles), *out]


def _postgresql(v: _Inputs, components: tuple[str, ...]) -> list[Setting]:
    user = v.string("fleet_db_user", "gitlab")
    password = v.need("fleet_db_password", "the application role's password, from Vault")
    clients = [_cidr(a) for a in v.get("gitlab_omnibus_client_addresses", [])]
    if not clients:
        raise OmnibusError(
            "no rails or sidekiq host has a fleet_internal_address: "
            "postgresql['md5_auth_cidr_addresses'] would be empty", rule=f"host {v.host}",
            hint="set fleet_internal_address in host_vars of every rails and sidekiq host")
    out = [
        Setting(("postgresql", "listen_address"),
                v.string("gitlab_omnibus_postgresql_listen_address")
                or v.need("fleet_internal_address", "PostgreSQL listens on it")),
        Setting(("postgresql", "port"), v.integer("fleet_db_port", 5432)),
        Setting(("postgresql", "sql_user"), user),
        Setting(("postgresql", "sql_user_password"), _pg_md5(password, user),
                secret="fleet_db_password"),
        Setting(("postgresql", "md5_auth_cidr_addresses"), list(dict.fromkeys(clients))),
        Setting(("postgresql", "trust_auth_cidr_addresses"), []),
        # The database postgres_role creates (GitLab names it after gitlab_rails' setting).
        Setting(("gitlab_rails", "db_database"), v.string("fleet_db_name",
                                                          "gitlabhq_production")),
    ]
    if not {"rails", "sidekiq"} & set(components):
        # Migrations run from a Rails node (gitlab_omnibus_auto_migrate), never from here.
        out.append(Setting(("gitlab_rails", "auto_migrate"), False))
    if v.flag("fleet_tls_enabled"):
        out += [
            Setting(("postgresql", "ssl"), "on"),
            Setting(("postgresql", "hostssl"), True),
            Setting(("postgresql", "ssl_cert_file"), v.need("fleet_tls_cert_path", "TLS")),
            Setting(("postgresql", "ssl_key_file"), v.need("fleet_tls_key_path", "TLS")),
            Setting(("postgresql", "ssl_ca_file"), v.need("fleet_tls_ca_path", "TLS")),
        ]
    return out


def _redis(v: _Inputs) -> list[Setting]:
    port = v.integer("fleet_redis_port", 6379)
    out = [
        Setting(("redis", "bind"), v.string("gitlab_omnibus_redis_bind")
                or v.need("fleet_internal_address", "Redis listens on it")),
    ]
    if v.flag("fleet_tls_enabled"):
        out += [
            Setting(("redis", "port"), 0),
            Setting(("redis", "tls_port"), port),
            Setting(("redis", "tls_cert_file"), v.need("fleet_tls_cert_path", "TLS")),
            Setting(("redis", "tls_key_file"), v.need("fleet_tls_key_path", "TLS")),
            Setting(("redis", "tls_ca_cert_file"), v.need("fleet_tls_ca_path", "TLS")),
            Setting(("redis", "tls_auth_clients"), "no"),
        ]
    else:
        out.append(Setting(("redis", "port"), port))
    out.append(Setting(("redis", "password"),
                       v.need("fleet_redis_password", "Redis requires a password"),
                       secret="fleet_redis_password"))
    return out


def _storages(v: _Inputs) -> list[dict[str, str]]:
    storages = v.get("gitlab_omnibus_gitaly_storages") or [DEFAULT_GITALY_STORAGE]
    for storage in storages:
        if not isinstance(storage, Mapping) or not storage.get("name") or \
                not storage.get("path"):
            raise OmnibusError(f"gitlab_omnibus_gitaly_storages entry {storage!r} needs a name "
                               "and a path", rule=f"host {v.host}")
    return [{"name": str(s["name"]), "path": str(s["path"])} for s in storages]


def _gitaly(v: _Inputs, version: Version) -> list[Setting]:
    token = v.need("fleet_gitaly_token", "Gitaly's auth token, from Vault")
    host = v.string("gitlab_omnibus_gitaly_listen_host") or \
        v.need("fleet_internal_address", "Gitaly listens on it")
    listen = _listen(host, v.integer("fleet_gitaly_port", 8075) or 8075)
    tls = v.flag("fleet_tls_enabled")
    api = v.string("gitlab_omnibus_internal_api_url") or v.string("gitlab_omnibus_external_url")
    if not api:
        raise OmnibusError(
            "a Gitaly node needs GitLab's internal API URL (Gitaly's hooks call it)",
            rule=f"host {v.host}",
            hint="set gitlab_omnibus_internal_api_url (or gitlab_omnibus_external_url)")
    storages = _storages(v)
    out: list[Setting] = []
    if version >= GITALY_CONFIGURATION:
        configuration: dict[str, Any] = {}
        if tls:
            configuration["tls_listen_addr"] = listen
            configuration["tls"] = {"certificate_path": v.need("fleet_tls_cert_path", "TLS"),
                                    "key_path": v.need("fleet_tls_key_path", "TLS")}
        else:
            configuration["listen_addr"] = listen
        configuration["auth"] = {"token": token}
        configuration["storage"] = storages
        out.append(Setting(("gitaly", "configuration"), configuration,
                           secret="fleet_gitaly_token"))
    else:
        if storages != [DEFAULT_GITALY_STORAGE]:
            raise OmnibusError(
                f"gitlab_omnibus_gitaly_storages other than the default storage need GitLab "
                f"{show(GITALY_CONFIGURATION)} or later here (gitaly['configuration'])",
                rule=f"host {v.host}", hint="keep the default storage on older releases")
        if tls:
            out += [Setting(("gitaly", "tls_listen_addr"), listen),
                    Setting(("gitaly", "certificate_path"), v.need("fleet_tls_cert_path", "TLS")),
                    Setting(("gitaly", "key_path"), v.need("fleet_tls_key_path", "TLS"))]
        else:
            out.append(Setting(("gitaly", "listen_addr"), listen))
        out.append(Setting(("gitaly", "auth_token"), token, secret="fleet_gitaly_token"))
    out += [
        Setting(("gitlab_rails", "gitaly_token"), token, secret="fleet_gitaly_token"),
        Setting(("gitlab_rails", "internal_api_url"), api),
    ]
    return out


def _client(v: _Inputs, version: Version) -> list[Setting]:
    """What every GitLab application node (rails, sidekiq) needs."""
    tls = v.flag("fleet_tls_enabled")
    out = [
        Setting(("external_url",), v.need(
            "gitlab_omnibus_external_url",
            "GitLab's URL: Sidekiq jobs put it in every link they write")),
        Setting(("gitlab_rails", "auto_migrate"), v.flag("gitlab_omnibus_auto_migrate")),
        Setting(("gitlab_rails", "db_host"), v.need("fleet_db_host", "where PostgreSQL is")),
        Setting(("gitlab_rails", "db_port"), v.integer("fleet_db_port", 5432)),
        Setting(("gitlab_rails", "db_username"), v.string("fleet_db_user", "gitlab")),
        Setting(("gitlab_rails", "db_password"),
                v.need("fleet_db_password", "the application role's password, from Vault"),
                secret="fleet_db_password"),
        Setting(("gitlab_rails", "db_database"), v.string("fleet_db_name",
                                                          "gitlabhq_production")),
    ]
    if tls:
        out += [Setting(("gitlab_rails", "db_sslmode"), "verify-full"),
                Setting(("gitlab_rails", "db_sslrootcert"), v.need("fleet_tls_ca_path", "TLS"))]
    sentinels = _sentinels(v)
    if sentinels:
        out += _sentinel_client(v, version, sentinels, tls)
    else:
        out += [
            Setting(("gitlab_rails", "redis_host"), v.need("fleet_redis_host", "where Redis is")),
            Setting(("gitlab_rails", "redis_port"), v.integer("fleet_redis_port", 6379)),
        ]
    out += [
        Setting(("gitlab_rails", "redis_database"), v.integer("fleet_redis_database", 0)),
        Setting(("gitlab_rails", "redis_password"),
                v.need("fleet_redis_password", "Redis requires a password"),
                secret="fleet_redis_password"),
    ]
    if tls:
        out.append(Setting(("gitlab_rails", "redis_ssl"), True))
    address = v.string("fleet_gitaly_address")
    if address:
        storages = {s["name"]: {"gitaly_address": address} for s in _storages(v)}
        out.append(Setting(("gitlab_rails", "gitaly_token"),
                           v.need("fleet_gitaly_token", "Gitaly's auth token, from Vault"),
                           secret="fleet_gitaly_token"))
        if version >= REPOSITORIES_STORAGES:
            out.append(Setting(("gitlab_rails", "repositories_storages"), storages))
        else:
            out.append(Setting(("git_data_dirs",), storages))
    return out


def _sentinels(v: _Inputs) -> list[dict[str, Any]]:
    """``fleet_redis_sentinels`` as GitLab writes them: ``[{'host' => ..., 'port' => ...}]``."""
    value = v.get("fleet_redis_sentinels") or []
    default_port = v.integer("fleet_redis_sentinel_port", 26379) or 26379
    if not isinstance(value, list):
        raise OmnibusError(f"fleet_redis_sentinels must be a list of {{host, port}}, not "
                           f"{value!r}", rule=f"host {v.host}",
                           hint="fleet_redis_sentinels: [{host: 10.0.0.11, port: 26379}, ...]")
    out = []
    for entry in value:
        if not isinstance(entry, Mapping) or not entry.get("host"):
            raise OmnibusError(f"fleet_redis_sentinels: {entry!r} has no host",
                               rule=f"host {v.host}",
                               hint="each sentinel is {host: ADDRESS, port: 26379}")
        port = entry.get("port") or default_port
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise OmnibusError(f"fleet_redis_sentinels: {entry!r} has no valid port",
                               rule=f"host {v.host}",
                               hint="each sentinel is {host: ADDRESS, port: 26379}")
        out.append({"host": str(entry["host"]), "port": int(port)})
    return out


def _sentinel_client(v: _Inputs, version: Version, sentinels: list[dict[str, Any]],
                     tls: bool) -> list[Setting]:
    """Redis through Sentinel (GitLab's "Configure the GitLab application to use Sentinel"):
    the master's name and password, the sentinels, and (from the releases that have them)
    the sentinels' own password and TLS."""
    known = known_settings()
    out = [
        Setting(("redis", "master_name"),
                v.string("fleet_redis_sentinel_master_name", "gitlab-redis") or "gitlab-redis"),
        Setting(("redis", "master_password"),
                v.need("fleet_redis_password", "Redis requires a password"),
                secret="fleet_redis_password"),
        Setting(("gitlab_rails", "redis_sentinels"), sentinels),
    ]
    password = v.string("fleet_redis_sentinel_password")
    if password and known.setting("gitlab_rails", "redis_sentinels_password",
                                  version).state == "present":
        out.append(Setting(("gitlab_rails", "redis_sentinels_password"), password,
                           secret="fleet_redis_sentinel_password"))
    if tls and known.setting("gitlab_rails", "redis_sentinels_ssl", version).state == "present":
        out.append(Setting(("gitlab_rails", "redis_sentinels_ssl"), True))
    return out


def _pinned_ids(v: _Inputs) -> list[Setting]:
    return [
        Setting(("user", "uid"), v.integer("fleet_git_uid", 9000)),
        Setting(("user", "gid"), v.integer("fleet_git_gid", 9000)),
        Setting(("web_server", "uid"), v.integer("common_web_server_uid", 9001)),
        Setting(("web_server", "gid"), v.integer("common_web_server_gid", 9001)),
        Setting(("registry", "uid"), v.integer("common_registry_uid", 9002)),
        Setting(("registry", "gid"), v.integer("common_registry_gid", 9002)),
    ]


def _integrations(v: _Inputs) -> list[Setting]:
    out: list[Setting] = []
    registry = v.string("sidekiq_app_registry_api_url")
    if registry:
        out += [Setting(("gitlab_rails", "registry_api_url"), registry),
                Setting(("gitlab_rails", "registry_key_path"),
                        v.string("gitlab_omnibus_registry_key_path")
                        or "/var/opt/gitlab/gitlab-rails/etc/gitlab-registry.key")]
    if v.flag("sidekiq_app_ldap_enabled"):
        out += [
            Setting(("gitlab_rails", "ldap_enabled"), True),
            Setting(("gitlab_rails", "ldap_servers"),
                    v.need("sidekiq_app_ldap_servers", "LDAP is enabled"),
                    secret="sidekiq_app_ldap_servers"),
            Setting(("gitlab_rails", "ldap_sync_worker_cron"),
                    v.string("sidekiq_app_ldap_sync_worker_cron")),
            Setting(("gitlab_rails", "ldap_group_sync_worker_cron"),
                    v.string("sidekiq_app_ldap_group_sync_worker_cron")),
        ]
    providers = v.get("gitlab_omnibus_omniauth_providers") or []
    if providers:
        out.append(Setting(("gitlab_rails", "omniauth_providers"), providers,
                           secret="gitlab_omnibus_omniauth_providers"))
        sso = v.get("gitlab_omnibus_omniauth_allow_single_sign_on") or []
        if sso:
            out.append(Setting(("gitlab_rails", "omniauth_allow_single_sign_on"), sso))
    return out


def _sidekiq(v: _Inputs, version: Version) -> list[Setting]:
    out = []
    groups = v.get("sidekiq_queue_groups")
    if groups is not None:
        out.append(Setting(("sidekiq", "queue_groups"), list(groups)))
    # Removed in 17.0: rendered only when asked for (false is their default), and then the
    # checker refuses them on 17.0+ as gitlab-ctl reconfigure does.
    if v.flag("sidekiq_queue_selector"):
        out.append(Setting(("sidekiq", "queue_selector"), True))
    if v.flag("sidekiq_negate"):
        out.append(Setting(("sidekiq", "negate"), True))
    concurrency = v.integer("sidekiq_concurrency")
    if concurrency:
        if version < FIXED_CONCURRENCY:
            raise OmnibusError(
                f"sidekiq_concurrency needs GitLab {show(FIXED_CONCURRENCY)} or later: before, "
                "sidekiq-cluster takes only min/max concurrency (sv-sidekiq-run.erb passes -c "
                "from 16.9.0+ce.0)", rule=f"host {v.host}",
                hint="set sidekiq_min_concurrency and sidekiq_max_concurrency for this release")
        out.append(Setting(("sidekiq", "concurrency"), concurrency))
    else:
        for name in ("min_concurrency", "max_concurrency"):
            value = v.integer(f"sidekiq_{name}")
            if value is not None:
                out.append(Setting(("sidekiq", name), value))
    timeout = v.integer("sidekiq_timeout")
    if timeout is not None:
        out.append(Setting(("sidekiq", "shutdown_timeout"), timeout))
    out += [
        Setting(("sidekiq", "metrics_enabled"), v.flag("sidekiq_exporter_metrics_enabled", True)),
        Setting(("sidekiq", "listen_address"),
                v.string("sidekiq_exporter_metrics_listen_address", "127.0.0.1")),
        Setting(("sidekiq", "listen_port"), v.integer("fleet_sidekiq_metrics_port", 8082)),
        Setting(("sidekiq", "exporter_log_enabled"),
                v.flag("gitlab_omnibus_sidekiq_exporter_log_enabled")),
    ]
    if v.flag("sidekiq_exporter_tls_enabled"):
        if version < EXPORTER_TLS:
            raise OmnibusError(f"the metrics server's TLS needs GitLab {show(EXPORTER_TLS)} or "
                               "later (sidekiq['exporter_tls_enabled'])", rule=f"host {v.host}",
                               hint="set sidekiq_exporter_tls_enabled: false")
        out += [
            Setting(("sidekiq", "exporter_tls_enabled"), True),
            Setting(("sidekiq", "exporter_tls_cert_path"),
                    v.need("sidekiq_exporter_tls_cert_path", "the metrics server serves TLS")),
            Setting(("sidekiq", "exporter_tls_key_path"),
                    v.need("sidekiq_exporter_tls_key_path", "the metrics server serves TLS")),
        ]
    out += [
        Setting(("sidekiq", "health_checks_enabled"),
                v.flag("sidekiq_exporter_health_checks_enabled", True)),
        Setting(("sidekiq", "health_checks_listen_address"),
                v.string("sidekiq_exporter_health_checks_listen_address", "127.0.0.1")),
        Setting(("sidekiq", "health_checks_listen_port"),
                v.integer("fleet_sidekiq_health_checks_port", 8092)),
    ]
    return out


def build_gitlab_rb(inputs: Mapping[str, Any]) -> GitlabRb:
    """The settings of one node. ``inputs``: the host's variables by their inventory names
    (``fleet_*``, ``sidekiq_*``, ``sidekiq_exporter_*``, ``sidekiq_app_*``, ``common_*_uid``,
    ``gitlab_omnibus_*``), plus ``inventory_hostname``, ``group_names`` and
    ``gitlab_omnibus_client_addresses`` (the rails and sidekiq hosts' addresses)."""
    host = str(inputs.get("inventory_hostname") or "this host")
    v = _Inputs(inputs, host)
    groups = v.get("group_names") or []
    components = tuple(c for c in COMPONENTS if c in groups)
    if not components:
        raise OmnibusError(
            f"{host} is in none of the groups {', '.join(COMPONENTS)}: there is nothing to "
            "configure", rule=f"host {host}",
            hint="put the host in the groups of the services it runs, or leave it standalone")
    version = parse_version(v.get("sidekiq_gitlab_version") or default_version())
    rb = GitlabRb(host, version, components)
    rb.add("Services on this node", _services(v, components, version))
    if "postgresql" in components:
        rb.add("PostgreSQL on TCP for the rails and sidekiq hosts (md5 auth, no trust)",
               _postgresql(v, components))
    if "redis" in components:
        rb.add("Redis on TCP with a password", _redis(v))
    if "gitaly" in components:
        rb.add("Gitaly on TCP with an auth token", _gitaly(v, version))
    if {"rails", "sidekiq"} & set(components):
        rb.add("GitLab application: URL, database, Redis and Gitaly connections",
               _client(v, version))
        rb.add("Routing: the same rules on every rails and sidekiq host",
               [Setting(("sidekiq", "routing_rules"),
                        [list(rule) for rule in v.get("sidekiq_routing_rules", [])])])
        rb.add("Pinned UIDs and GIDs (shared storage)", _pinned_ids(v))
        rb.add("Container registry, LDAP, OmniAuth (SAML Group Sync)", _integrations(v))
    if "sidekiq" in components:
        rb.add("Sidekiq: processes, threads, metrics and health checks", _sidekiq(v, version))
    return _merged(rb)


def _merged(rb: GitlabRb) -> GitlabRb:
    """A setting two components both set (``gitlab_rails['gitaly_token']`` on a node that runs
    Gitaly and Sidekiq) is written once, where it first appears; they must agree."""
    seen: dict[tuple[str, ...], Any] = {}
    sections = []
    for title, settings in rb.sections:
        kept = []
        for setting in settings:
            if setting.path in seen:
                if seen[setting.path] != setting.value:
                    raise OmnibusError(f"{setting.label()} gets two values on {rb.host}",
                                       rule=f"host {rb.host}")
                continue
            seen[setting.path] = setting.value
            kept.append(setting)
        if kept:
            sections.append((title, kept))
    rb.sections = sections
    return rb
