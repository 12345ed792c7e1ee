"""``fleetsim import gitlab-rb``: an inventory from Omnibus GitLab's gitlab.rb files.

The files are parsed, never run (``simulator/fleet/gitlab_rb.py``). Everything is read and
checked before anything is written; then ``DIR/hosts.yml``, ``DIR/host_vars/HOST.yml`` (and
the worker catalog under ``DIR/.catalog/`` when ``--catalog`` is given) are written, and the
new inventory is planned once so the report says at once whether ``fleetsim plan`` accepts it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import FleetError, excerpt
from ..fleet.gitlab_rb import ImportedHost, import_host, render_inventory
from ..fleet.inventory import GROUPS
from ..routing.catalog import cached_catalog

__all__ = ["cmd_import_gitlab_rb"]

_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: MAJOR.MINOR, optionally a patch and an Omnibus edition suffix (17.5, 17.5.2, 17.5.2-ee.0).
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:-(?:ce|ee)(?:\.\d+)?)?")
#: Where a --catalog is copied inside the inventory: a hidden directory Ansible skips.
CATALOG_DIR = ".catalog"


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FleetError(
                f"{excerpt(item)} is not HOST=FILE",
                hint="give each gitlab.rb with the host's inventory name: "
                "sidekiq1.example.com=copies/sidekiq1/gitlab.rb")
        if not _HOST.fullmatch(name) or name in (*GROUPS, "all", "ungrouped"):
            raise FleetError(
                f"{excerpt(name)} cannot be a host name of the inventory",
                hint="use the host's name as Ansible knows it (letters, digits, '.', '-', '_'; "
                f"not a group name such as {', '.join(GROUPS)} or all)")
        if name in seen:
            raise FleetError(f"host {name} is given twice",
                             hint="give each host once, with its own gitlab.rb")
        seen.add(name)
        pairs.append((name, path))
    return pairs


def _check_output(out: Path, force: bool) -> list[str]:
    """The entries already in ``out`` (refused unless ``force``)."""
    if out.exists() and not out.is_dir():
        raise FleetError("-o: exists and is not a directory", file=str(out),
                         hint="give -o a new or empty directory for the inventory")
    entries = sorted(os.listdir(out)) if out.is_dir() else []
    if entries and not force:
        shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)"
                                          if len(entries) > 5 else "")
        raise FleetError(
            f"-o: the directory is not empty ({shown})", file=str(out),
            hint="give a new or empty directory, or --force to write hosts.yml, "
            "host_vars/HOST.yml and .catalog/ over the ones there (nothing else is removed)")
    return entries


def _catalogs(paths: list[str]) -> tuple[list[tuple[str, str]], str | list[str] | None]:
    """Each --catalog checked, with its name under .catalog/, and the value of
    sidekiq_worker_catalog (relative to the inventory)."""
    copies: list[tuple[str, str]] = []
    names: set[str] = set()
    for path in paths:
        try:
            cached_catalog(path)
        except FleetError as exc:
            raise exc.located(rule="--catalog") from None
        stem, suffix = os.path.splitext(os.path.basename(path))
        name, n = stem + suffix, 1
        while name in names:  # CE's and EE's are both all_queues.yml
            n += 1
            name = f"{stem}-{n}{suffix}"
        names.add(name)
        copies.append((path, name))
    refs = [f"{CATALOG_DIR}/{name}" for _, name in copies]
    return copies, (refs[0] if len(refs) == 1 else refs) if refs else None


def _write(path: Path, text: str) -> None:
    """Write ``text`` whole or not at all (a temporary file renamed over ``path``)."""
    hint = "give -o a directory you can write to"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise FleetError(f"-o: cannot write: {exc.strerror}", file=str(path),
                         hint=hint) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FleetError(f"-o: cannot write: {exc.strerror}", file=str(path),
                         hint=hint) from None


def _plan_summary(out: Path) -> str:
    """One line: what ``fleetsim plan -i DIR`` makes of the new inventory."""
    from ..fleet.inventory import load_fleet
    from ..fleet.plan import build_plan

    try:
        plan = build_plan(load_fleet(out))
    except FleetError as exc:
        return (f"warning: fleetsim plan -i {out} refuses the imported inventory "
                f"(the routing settings of the gitlab.rb files):\n  {exc}")
    processes = sum(len(h["processes"]) for h in plan["hosts"])
    warnings = len(plan["findings"]) - plan["errors"]
    return (f"plan: fleetsim plan -i {out}: {len(plan['hosts'])} Sidekiq host(s), {processes} "
            f"process(es), {plan['errors']} error(s), {warnings} warning(s)")


def _report(hosts: list[ImportedHost], out: Path, written: list[str],
            before: list[str]) -> None:
    print(f"read {len(hosts)} gitlab.rb file(s), nothing run:")
    width = max(len(h.name) for h in hosts)
    for host in hosts:
        groups = ", ".join(host.groups) or "no group"
        print(f"  {host.name:<{width}}  {host.file} -> {groups}; "
              f"{len(host.variables)} variable(s)")
    print(f"wrote {out}: {', '.join(written)}")
    secrets = [(h.name, s) for h in hosts for s in h.secrets]
    if secrets:
        print("secrets in the files, not written (keep them in Vault):")
        for name, secret in secrets:
            print(f"  {name}: {secret}")
    for host in hosts:
        for note in host.notes:
            print(f"note: {host.name}: {note}")
    ours = {"hosts.yml", "host_vars", CATALOG_DIR}
    left = [e for e in before if e not in ours]
    names = {f"{h.name}.yml" for h in hosts}
    vars_dir = out / "host_vars"
    if "host_vars" in before and vars_dir.is_dir():
        left += [f"host_vars/{e}" for e in sorted(os.listdir(vars_dir)) if e not in names]
    if left:
        print(f"note: left as they were (Ansible reads them too): {', '.join(left)}")


def cmd_import_gitlab_rb(args: argparse.Namespace) -> int:
    pairs = _pairs(args.hosts)
    if args.gitlab_version is not None and not _VERSION.fullmatch(args.gitlab_version):
        raise FleetError(f"--gitlab-version: {excerpt(args.gitlab_version)} is not a GitLab "
                         "version", hint="give MAJOR.MINOR (a patch and -ee.0 may follow), e.g. "
                         "--gitlab-version 17.5")
    out = Path(args.output)
    before = _check_output(out, args.force)
    copies, catalog_ref = _catalogs(args.catalog or [])
    hosts = [import_host(name, path, gitlab_version=args.gitlab_version, catalog=catalog_ref,
                         query_strict=not args.gitlab_compat) for name, path in pairs]
    files = render_inventory(hosts)
    for rel, text in files.items():
        _write(out / rel, text)
    written = ["hosts.yml", f"host_vars/ ({len(hosts)} host(s))"]
    for source, name in copies:
        target = out / CATALOG_DIR / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError as exc:
            raise FleetError(f"-o: cannot copy the catalog: {exc.strerror}",
                             file=str(target)) from None
        written.append(f"{CATALOG_DIR}/{name}")
    _report(hosts, out, written, before)
    print(_plan_summary(out))
    return 0
