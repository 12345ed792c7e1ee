"""The fleet as an Ansible inventory describes it (groups ``rails``, ``sidekiq``, ...).

``load_fleet(path)`` reads the inventory with ansible-core (group_vars and host_vars exactly as
Ansible sees them, Jinja templates rendered). ``Fleet.from_hostvars`` builds the same object from
the ``hostvars``/``groups`` a play sees, so the CLI and the Ansible filter plugins share one
implementation of every rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FleetError, InventoryError, VersionError, excerpt
from ..routing.catalog import Catalog, cached_catalog, catalog_paths
from ..routing.defaults import SIDEKIQ_DEFAULTS, VERSIONED_DEFAULTS, default, threads_model
from ..routing.queue_groups import Process, expand_queue_groups
from ..routing.rules import Router
from ..routing.versions import VARIABLE as VERSION_VAR
from ..routing.versions import GitLabVersion, parse_gitlab_version

GROUPS = ("redis", "postgresql", "gitaly", "rails", "sidekiq", "loadbalancer")
#: Routing/process variables this package reads on rails and sidekiq hosts, with their defaults
#: (simulator.routing.defaults: the one table fleetsim and the Ansible filters share).
SIDEKIQ_VARS: dict[str, Any] = SIDEKIQ_DEFAULTS
#: How every Redis client finds the Redis primary through Sentinel: each rails, sidekiq and
#: redis host must resolve the same values (the redis-sentinel-* checks).
SENTINEL_VARS = (
    "fleet_redis_sentinels",
    "fleet_redis_sentinel_port",
    "fleet_redis_sentinel_master_name",
    "fleet_redis_sentinel_password",
)
#: Variables compared between hosts but never shown: a Fleet holds only a digest of them
#: (:func:`secret_digest`).
SECRET_VARS = ("fleet_redis_sentinel_password",)
#: Variables of the data tier and the producers the connection checks read, per group.
GROUP_VARS: dict[str, tuple[str, ...]] = {
    # fleet_alert_settings: thresholds of fleetsim alerts (simulator.report.alert_settings).
    "rails": ("rails_db_pool", "rails_redis_pool", "fleet_alert_settings", *SENTINEL_VARS,
              "fleet_redis_durable_enqueue_replicas"),
    "postgresql": ("postgresql_max_connections", "postgresql_superuser_reserved_connections"),
    "redis": ("redis_maxclients", *SENTINEL_VARS, "redis_sentinel_quorum"),
    # Cores the node's Sidekiq processes share (the simulator's CPU model).
    "sidekiq": ("sidekiq_cpus", "fleet_alert_settings", *SENTINEL_VARS),
}
#: Variables a host may fail to render (a vault value without its password, a template needing
#: another host's facts) without making the inventory unusable: they are kept as written.
LENIENT_VARS = (*SENTINEL_VARS, "redis_sentinel_quorum")
#: Groups whose hosts the routing engine reads (the others only for their GROUP_VARS).
ROUTING_GROUPS = ("rails", "sidekiq")
#: Variables that must be real booleans (an unquoted true/false in YAML).
BOOLEAN_VARS = ("sidekiq_queue_selector", "sidekiq_negate", "sidekiq_query_strict")


def variables_of(name: str, members: Mapping[str, list[str]]) -> tuple[str, ...]:
    """The variables this package reads on host ``name``, given the group members."""
    keys: list[str] = []
    if any(name in members.get(g, ()) for g in ROUTING_GROUPS):
        keys += SIDEKIQ_VARS
    for group, names in GROUP_VARS.items():
        if name in members.get(group, ()):
            keys += names
    return tuple(dict.fromkeys(keys))


def secret_digest(value: Any) -> str:
    """What a Fleet keeps of a secret: "" when empty or unset, else a digest to compare
    (never shown, never written out)."""
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else json.dumps(plain_value(value), sort_keys=True,
                                                           default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class HostSettings:
    """The routing-related variables of one host."""

    name: str
    groups: tuple[str, ...]
    vars: dict[str, Any]
    base_dir: str | None = None
    #: Where each variable was read ("FILE:LINE"), when ansible-core says (:func:`value_origin`).
    origins: dict[str, str] = field(default_factory=dict)
    #: The inventory (for messages about a variable whose origin is unknown).
    source: str | None = None

    def where(self, key: str) -> str | None:
        """The file that set ``key`` (with its line), else the inventory."""
        return self.origins.get(key) or self.source

    @property
    def gitlab_version(self) -> GitLabVersion:
        """``sidekiq_gitlab_version`` (unset: the current release); a bad value is an error
        naming the file and the variable."""
        return parse_gitlab_version(self.vars.get(VERSION_VAR), file=self.where(VERSION_VAR),
                                    rule=f"host {self.name}, {VERSION_VAR}")

    def get(self, key: str) -> Any:
        """The variable's value, or its default (simulator.routing.defaults) for this host's
        GitLab release when unset."""
        value = self.vars.get(key)
        if value is None:
            if key not in SIDEKIQ_VARS:
                return None
            return default(key, self.gitlab_version if key in VERSIONED_DEFAULTS else None)
        return value

    def flag(self, key: str, source: str | None = None) -> bool:
        """A boolean variable, strictly: the string "false" is an error, never true."""
        value = self.get(key)
        if isinstance(value, bool):
            return value
        raise InventoryError(
            f"{key} must be true or false, not the {type(value).__name__} {excerpt(value)}",
            file=source,
            rule=f"host {self.name}, {key}",
            hint=f"write an unquoted true or false (`{key}: false`); a quoted \"false\" is a "
            "string, which Jinja and Python read as true",
        )

    @property
    def catalog_paths(self) -> tuple[str, ...]:
        """``sidekiq_worker_catalog`` as files (one, or several merged: GitLab EE's CE and EE
        ``all_queues.yml``), relative ones relative to the inventory directory; () for CE's."""
        try:
            paths = catalog_paths(self.vars.get("sidekiq_worker_catalog"))
        except FleetError as exc:
            raise exc.located(file=self.where("sidekiq_worker_catalog"),
                              rule=f"host {self.name}, sidekiq_worker_catalog") from None
        return tuple(p if os.path.isabs(p) or not self.base_dir else
                     os.path.join(self.base_dir, p) for p in paths)


@dataclass
class SidekiqHost:
    name: str
    processes: list[Process]
    shard: str | None
    settings: HostSettings

    @property
    def gitlab_version(self) -> GitLabVersion:
        return self.settings.gitlab_version

    @property
    def threads_model(self) -> str:
        """What sets this host's threads per process (simulator.routing.defaults.threads_model):
        ``fixed`` (sidekiq_concurrency), ``formula`` (GitLab's before 17.0: queues + 1 within
        min/max) or ``default`` (20, GitLab 17+)."""
        s = self.settings
        return threads_model(min_concurrency=s.get("sidekiq_min_concurrency"),
                             max_concurrency=s.get("sidekiq_max_concurrency"),
                             concurrency=s.get("sidekiq_concurrency"),
                             gitlab_version=self.gitlab_version)

    @property
    def cpus(self) -> int | None:
        """``sidekiq_cpus``: the cores this node's Sidekiq processes share (None: unset; the
        simulator then gives the node a core per process)."""
        value = self.settings.vars.get("sidekiq_cpus")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InventoryError(
                f"sidekiq_cpus must be a whole number of cores (1 or more), not {excerpt(value)}",
                rule=f"host {self.name}, sidekiq_cpus",
                hint="set it to the node's CPU count (ansible_processor_vcpus), or remove it",
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.name,
            "gitlab_version": str(self.gitlab_version),
            "redis_shard": self.shard,
            "threads_model": self.threads_model,
            "processes": [p.to_dict() for p in self.processes],
        }


@dataclass
class Fleet:
    hosts: dict[str, HostSettings]
    groups: dict[str, list[str]]
    source: str = "<inventory>"
    #: postgresql and redis hosts, with the variables of GROUP_VARS (connection limits).
    data_hosts: dict[str, HostSettings] = field(default_factory=dict)
    #: The inventory sources Ansible reads (files or directories), when known.
    sources: tuple[str, ...] = ()
    _sidekiq: list[SidekiqHost] | None = field(default=None, repr=False)
    _router: Router | None = field(default=None, repr=False)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_hostvars(
        cls,
        hostvars: Mapping[str, Mapping[str, Any]],
        groups: Mapping[str, Any],
        *,
        source: str = "<inventory>",
        sources: tuple[str, ...] = (),
        origins: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Fleet:
        """``origins``: per host, where each variable was read (``load_fleet`` knows)."""
        members = {g: list(groups.get(g) or []) for g in GROUPS}

        def settings(name: str, keys: tuple[str, ...]) -> HostSettings:
            hv = hostvars.get(name) or {}
            values = {k: secret_digest(hv.get(k)) if k in SECRET_VARS else plain_value(hv.get(k))
                      for k in keys if k in hv}
            host_groups = tuple(g for g in GROUPS if name in members[g])
            base = hv.get("inventory_dir")
            return HostSettings(name, host_groups, values, str(base) if base else None,
                                dict((origins or {}).get(name) or {}), source)

        hosts = {name: settings(name, variables_of(name, members))
                 for name in sorted({h for g in ROUTING_GROUPS for h in members[g]})}
        data_hosts = {name: settings(name, variables_of(name, members))
                      for name in sorted({h for g in ("postgresql", "redis")
                                          for h in members[g]})}
        return cls(hosts, members, source, data_hosts, tuple(str(s) for s in sources))

    # -- derived views ------------------------------------------------------------------
    def host_label(self, name: str) -> str:
        return f"{self.source}: host {name}"

    def catalog_for(self, host: HostSettings) -> Catalog:
        paths = host.catalog_paths
        try:
            return cached_catalog(paths or None)
        except FleetError as exc:
            raise exc.located(rule=f"host {host.name}, sidekiq_worker_catalog") from None

    @property
    def reference_host(self) -> HostSettings | None:
        """The host whose routing rules and catalog speak for the fleet (first sidekiq host)."""
        for group in ("sidekiq", "rails"):
            if self.groups[group]:
                return self.hosts[self.groups[group][0]]
        return None

    @property
    def catalog(self) -> Catalog:
        ref = self.reference_host
        return self.catalog_for(ref) if ref else cached_catalog(None)

    @property
    def gitlab_version(self) -> GitLabVersion:
        """The GitLab release the fleet runs: the reference host's ``sidekiq_gitlab_version``
        (unset: the current release)."""
        ref = self.reference_host
        return ref.gitlab_version if ref else parse_gitlab_version(None)

    def router_for(self, host: HostSettings) -> Router:
        try:
            return Router.from_rules(
                host.get("sidekiq_routing_rules"),
                self.catalog_for(host),
                strict=host.flag("sidekiq_query_strict", self.source),
            )
        except (InventoryError, VersionError):
            raise
        except FleetError as exc:
            raise exc.located(
                file=host.where("sidekiq_routing_rules"),
                rule=f"host {host.name}, sidekiq_routing_rules",
            ) from None

    @property
    def router(self) -> Router:
        if self._router is None:
            ref = self.reference_host
            if ref is None:
                self._router = Router.from_rules(None, cached_catalog(None))
            else:
                self._router = self.router_for(ref)
        return self._router

    def processes_for(self, host: HostSettings) -> list[Process]:
        selector = host.flag("sidekiq_queue_selector", self.source)
        negate = host.flag("sidekiq_negate", self.source)
        strict = host.flag("sidekiq_query_strict", self.source)
        version = host.gitlab_version
        # GitLab 17+: `*` is the routing rules' queues (and mailers).
        wildcard = (self.router_for(host).wildcard_queues()
                    if version.wildcard_means_routed_queues else None)
        try:
            return expand_queue_groups(
                host.get("sidekiq_queue_groups"),
                self.catalog_for(host),
                min_concurrency=host.get("sidekiq_min_concurrency"),
                max_concurrency=host.get("sidekiq_max_concurrency"),
                concurrency=host.get("sidekiq_concurrency"),
                selector=selector,
                negate=negate,
                strict=strict,
                fetch_order=host.get("sidekiq_fetch_order"),
                gitlab_version=version,
                wildcard_queues=wildcard,
            )
        except FleetError as exc:
            raise exc.located(file=self.source, rule=f"host {host.name}") from None

    def sidekiq_hosts(self) -> list[SidekiqHost]:
        if self._sidekiq is None:
            self._sidekiq = [
                SidekiqHost(
                    name,
                    self.processes_for(self.hosts[name]),
                    self.hosts[name].get("sidekiq_redis_shard"),
                    self.hosts[name],
                )
                for name in self.groups["sidekiq"]
            ]
        return self._sidekiq

    def rules_fingerprint(self, host: HostSettings) -> str:
        rules = host.get("sidekiq_routing_rules") or []
        return json.dumps(rules, sort_keys=True, default=str)


# -- loading an inventory with ansible-core -----------------------------------------------


def _vault_secrets(loader: Any) -> None:
    """Use the vault password file Ansible itself would use (env or ansible.cfg), if any."""
    from ansible import constants as C
    from ansible.parsing.vault import get_file_vault_secret

    filename = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or C.DEFAULT_VAULT_PASSWORD_FILE
    if isinstance(filename, (list, tuple)):
        filename = filename[0] if filename else None
    if filename and Path(str(filename)).exists():
        secret = get_file_vault_secret(filename=str(filename), loader=loader)
        secret.load()
        loader.set_vault_secrets([("default", secret)])


_PLUGIN_LOADER_READY = False


def _cache_ansible_data() -> None:
    """Read ansible-core's own two large YAML data files through fleetsim's parse cache.

    Every ansible-core start parses ``config/base.yml`` (its settings, 90 KB) and
    ``config/ansible_builtin_runtime.yml`` (the ``ansible.builtin`` redirects, 370 KB): 80-90
    ms of a ``fleetsim`` run that takes half a second. Both are data shipped with ansible-core,
    never an input of the user's, so their parsed form is kept in the user's cache directory
    keyed by the text's SHA-256, like worker catalogs (``FLEETSIM_CACHE=off`` turns it off).
    ansible-core documents the runtime parser as replaceable (``_meta_yml_to_dict``: "may be
    monkeypatched ... content_id ... to allow other implementations to cache the output"); the
    settings reader is a method of ``ConfigManager``, replaced only before ``ansible.constants``
    builds the one ``ConfigManager`` of the process. If either hook moves in another
    ansible-core, ansible-core parses as it always did.
    """
    import sys

    from ..inputs import cached_parse

    try:
        import ansible.config.manager as config_manager
        from ansible.release import __version__ as ansible_version
        from ansible.utils.collection_loader import _collection_finder as finder
    except ImportError:  # pragma: no cover - another ansible-core layout
        return
    tag = f"ansible-{ansible_version}"
    parse_meta = getattr(finder, "_meta_yml_to_dict", None)
    if parse_meta is not None and not getattr(parse_meta, "fleetsim_cached", False):
        def meta_yml_to_dict(data: bytes | str, content_id: Any) -> Any:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            return cached_parse(text, f"{tag}-runtime", lambda: parse_meta(data, content_id))

        meta_yml_to_dict.fleetsim_cached = True  # type: ignore[attr-defined]
        finder._meta_yml_to_dict = meta_yml_to_dict
    manager = getattr(config_manager, "ConfigManager", None)
    read_defs = getattr(manager, "_read_config_yaml_file", None)
    if ("ansible.constants" in sys.modules or read_defs is None
            or getattr(read_defs, "fleetsim_cached", False)):
        return

    def read_config_yaml_file(self: Any, yml_file: Any) -> Any:
        try:
            with open(yml_file, "rb") as fh:
                text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError, TypeError):
            return read_defs(self, yml_file)  # ansible-core's own error for a missing file
        return cached_parse(text, f"{tag}-config", lambda: read_defs(self, yml_file))

    read_config_yaml_file.fleetsim_cached = True  # type: ignore[attr-defined]
    manager._read_config_yaml_file = read_config_yaml_file  # type: ignore[union-attr]


def _strict_inventory_manager(base: type) -> type:
    """An ``InventoryManager`` that records the files no inventory plugin could parse.

    Ansible only warns about them and goes on with the hosts it did read, so a broken
    ``hosts.yml`` looked like an empty fleet (a ``no-sidekiq-hosts`` finding) instead of the
    unusable input it is.
    """
    import ansible.inventory.manager as manager

    class StrictInventoryManager(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.unparsed: list[tuple[str, list[str]]] = []
            super().__init__(*args, **kwargs)

        def parse_source(self, source: Any, cache: bool = False) -> bool:
            if os.path.isdir(source):
                return super().parse_source(source, cache=cache)
            reasons: list[str] = []
            display = manager.display
            original = display.error_as_warning

            def capture(msg: Any = None, exception: Any = None, **kw: Any) -> None:
                plugin = str(msg or "")
                if exception is not None and "'auto' plugin" not in plugin:
                    reasons.append(str(getattr(exception, "message", exception)).strip())
                original(msg=msg, exception=exception, **kw)

            patched = "error_as_warning" in vars(display)
            display.error_as_warning = capture
            try:
                parsed = super().parse_source(source, cache=cache)
            finally:
                if patched:
                    display.error_as_warning = original
                else:
                    del display.error_as_warning
            if not parsed:
                self.unparsed.append((str(source), reasons))
            return parsed

    return StrictInventoryManager


def load_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read an Ansible inventory (directory or file) into a ``Fleet``."""
    path = Path(path)
    if not path.exists():
        raise InventoryError(
            "no such inventory", file=str(path), hint="pass -i inventories/example or a path"
        )
    _cache_ansible_data()
    try:
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.plugins.loader import init_plugin_loader
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager
    except ImportError:  # pragma: no cover - ansible-core is a dependency
        raise InventoryError(
            "ansible-core is not installed", hint="run `make setup` and use .venv/bin/fleetsim"
        ) from None
    try:
        # The collection loader, so FQCN lookups in the inventory (ansible.builtin.env) resolve;
        # once per process (a second call only warns).
        global _PLUGIN_LOADER_READY
        if not _PLUGIN_LOADER_READY:
            init_plugin_loader()
            _PLUGIN_LOADER_READY = True
        loader = DataLoader()
        _vault_secrets(loader)
        inventory = _strict_inventory_manager(InventoryManager)(
            loader=loader, sources=[str(path)]
        )
        for source, _ in inventory.unparsed:
            if looks_like_catalog(source):
                message, fix = catalog_in_inventory(source, (str(path),))
                raise InventoryError(message, file=source, hint=fix)
        if inventory.unparsed:
            source, reasons = inventory.unparsed[0]
            raise InventoryError(
                "Ansible cannot parse this inventory file"
                + (f": {reasons[0]}" if reasons else ""),
                file=source,
                hint="fix the file (in a YAML inventory `hosts:` is a mapping: `hosts: "
                "{sk1.example.com: {}}`, not a list; `children:` likewise), then check it "
                "with `ansible-inventory -i PATH --list`",
            )
        variables = VariableManager(loader=loader, inventory=inventory)
        groups = {
            g: [h.name for h in inventory.groups[g].get_hosts()] if g in inventory.groups else []
            for g in GROUPS
        }
        hostvars: dict[str, dict[str, Any]] = {}
        origins: dict[str, dict[str, str]] = {}
        for name in sorted({h for g in (*ROUTING_GROUPS, *GROUP_VARS) for h in groups[g]}):
            host = inventory.get_host(name)
            hv = variables.get_vars(host=host, include_hostvars=False)
            templar = Templar(loader=loader, variables=hv)
            rendered = {k: _render(templar, k, hv[k]) for k in variables_of(name, groups)
                        if k in hv}
            origins[name] = {k: o for k in rendered
                             if (o := value_origin(rendered[k]) or value_origin(hv[k]))}
            rendered["inventory_dir"] = hv.get("inventory_dir")
            hostvars[name] = plain_value(rendered)
    except AnsibleError as exc:
        raise InventoryError(
            f"Ansible cannot read the inventory: {exc.message}",
            file=str(path),
            hint="run `ansible-inventory -i PATH --list` to see the same error in context",
        ) from None
    return Fleet.from_hostvars(hostvars, groups, source=str(path), sources=(str(path),),
                               origins=origins)


def _render(templar: Any, key: str, value: Any) -> Any:
    """A variable as Ansible renders it; for LENIENT_VARS that Ansible cannot render here, the
    value as written (hosts that write the same thing still compare equal)."""
    if key not in LENIENT_VARS:
        return templar.template(value)
    from ansible.errors import AnsibleError

    try:
        return templar.template(value)
    except AnsibleError:
        try:
            return f"<not rendered: {value}>" if key not in SECRET_VARS else f"<vault:{value}>"
        except Exception:  # an encrypted value that cannot even be shown
            return "<not rendered>"


def value_origin(value: Any) -> str | None:
    """Where ansible-core read a variable's value ("FILE:LINE"), for messages only, or None.

    ansible-core 2.19 tags every value it loads with an ``Origin`` (diagnostic metadata: never
    used to decide anything here), reachable only through a private module; this is the one
    place that reaches past its public API, and it degrades to None if that module moves
    (pinned by tests/fleet/test_gitlab_version_plan.py)."""
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # pragma: no cover - another ansible-core
        return None
    try:
        tag = Origin.get_tag(value)
    except Exception:  # diagnostics only: never fail a plan over them
        return None
    if tag is None or not tag.path:
        return None
    return f"{tag.path}:{tag.line_num}" if tag.line_num else str(tag.path)


# -- a worker catalog among the inventory sources --------------------------------------------

#: Directories Ansible reads as variables, not as inventory sources, inside an inventory dir.
_VARS_DIRS = ("group_vars", "host_vars")


def read_as_inventory(path: str, sources: tuple[str, ...]) -> str | None:
    """The inventory source directory in which Ansible reads ``path`` as an inventory source
    (or, under group_vars/host_vars, as variables), or None.

    Ansible reads every file of an inventory directory and of its subdirectories, except names
    that start with a dot (and a few editor/backup extensions): a file in a hidden directory
    (``.catalog/all_queues.yml``) or outside the directory is never read."""
    target = Path(os.path.abspath(path))
    for source in sources:
        base = Path(os.path.abspath(source))
        if not base.is_dir():
            continue
        try:
            rel = target.relative_to(base)
        except ValueError:
            continue
        if not rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        return str(base)
    return None


def catalog_in_inventory(catalog: str, sources: tuple[str, ...],
                         hosts: list[str] | None = None) -> tuple[str, str]:
    """The message and the fix for a worker catalog Ansible reads as an inventory source."""
    base = read_as_inventory(catalog, sources) or os.path.dirname(os.path.abspath(catalog))
    rel = os.path.relpath(os.path.abspath(catalog), base)
    name = os.path.basename(catalog)
    named = f" (sidekiq_worker_catalog of {', '.join(hosts)})" if hosts else ""
    vars_dir = Path(rel).parts[0] in _VARS_DIRS
    message = (
        f"the worker catalog {rel}{named} lies in the inventory directory {base}, so Ansible "
        + ("reads it as variables" if vars_dir else "also reads it as an inventory source "
           "(ansible-playbook warns \"Unable to parse ... as an inventory source\")")
        + "; a catalog is not an inventory file"
    )
    fix = (
        f"move it where Ansible does not look: a hidden directory of the inventory, which "
        f"Ansible skips (mkdir {base}/.catalog && mv {os.path.join(base, rel)} {base}/.catalog/, "
        f"then sidekiq_worker_catalog: .catalog/{name}), or next to the inventory directory "
        f"(sidekiq_worker_catalog: ../{name}); relative paths are relative to the inventory "
        "directory"
    )
    return message, fix


def looks_like_catalog(path: str) -> bool:
    """True when ``path`` reads as a worker catalog (all_queues.yml format)."""
    try:
        return len(cached_catalog(path)) > 0
    except (FleetError, OSError, ValueError):
        return False


def plain_value(value: Any) -> Any:
    """Strip ansible-core's tagged types down to plain Python containers and scalars.

    ansible-core hands inventory values and filter arguments over as its own tagged
    str/int/dict/list subclasses; the engine's strict type checks expect plain ones. Used here and
    by the collection's filter plugin."""
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
