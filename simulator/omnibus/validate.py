"""Check a rendered ``gitlab.rb`` without GitLab.

Three steps, each able to fail on its own:

1. ``ruby -c FILE``: the file is Ruby (:func:`syntax_check`);
2. the recording harness (``roles/gitlab_omnibus/files/record_settings.rb``) evaluates it with
   stub objects and reports every assignment as JSON (:func:`record`);
3. :func:`check` compares what was recorded with what the inventory asked
   (:class:`~simulator.omnibus.gitlab_rb.GitlabRb`: every setting there, with the same value,
   and nothing else) and with the settings of the node's GitLab release
   (:mod:`~simulator.omnibus.known`). Like ``gitlab-ctl reconfigure``, it refuses a removed
   setting (GitLab's own "has been deprecated since ... and was removed in ..." line) and a
   top-level name the release does not have (reconfigure stops with ``undefined method``).
   It also refuses a key GitLab does not know under a known name (``sidekiq['concurency']``):
   reconfigure would store and ignore it, so the setting would silently have no effect.

``python -m simulator.omnibus.validate FILE --version 17.5 --harness PATH`` runs steps 1-3 on any
gitlab.rb (without an inventory: only the release check).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..fleet.checks import Finding
from .gitlab_rb import GitlabRb
from .known import KnownSettings, OmnibusError, Version, known_settings, label, parse_version, show

__all__ = ["check", "check_expected", "check_known", "errors", "record", "syntax_check"]

ERROR = "error"
WARNING = "warning"
#: Top-level settings whose keys are the operator's names (storages), not GitLab's settings.
NAMED_BY_OPERATOR = frozenset({"git_data_dirs"})


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


# -- running Ruby --------------------------------------------------------------------------------


def _ruby(ruby: str) -> str:
    found = shutil.which(ruby)
    if found is None:
        raise OmnibusError(
            f"{ruby!r} is not on the PATH: checking gitlab.rb needs Ruby on this machine",
            hint="install it (Debian: apt-get install ruby; scripts/hostdeps.sh does it for tests)")
    return found


def syntax_check(path: str | Path, *, ruby: str = "ruby") -> None:
    """``ruby -c``; a syntax error is an :class:`OmnibusError` with Ruby's message."""
    out = subprocess.run([_ruby(ruby), "-c", str(path)], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise OmnibusError(f"not valid Ruby: {(out.stderr or out.stdout).strip()}",
                           file=str(path), hint="fix the file (or the template that wrote it)")


def record(path: str | Path, *, harness: str | Path, ruby: str = "ruby",
           maps: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """What the harness recorded for ``path``: ``{"files", "assignments", "settings"}``."""
    argv = [_ruby(ruby), str(harness), str(path)]
    for source, target in maps:
        argv += ["--map", f"{source}={target}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise OmnibusError(out.stderr.strip() or f"the harness failed ({out.returncode})",
                           file=str(path))
    return json.loads(out.stdout)


# -- the checks ----------------------------------------------------------------------------------


def _where(recorded: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Each assigned path's last place (``file:line``)."""
    places: dict[tuple[str, ...], str] = {}
    for entry in recorded.get("assignments") or ():
        if entry.get("file"):
            places[tuple(entry["path"])] = f"{entry['file']}:{entry.get('line')}"
    return places


def _place(places: dict[tuple[str, ...], str], path: tuple[str, ...]) -> str:
    """Where ``path`` (or the setting above it, or the first one below it) was assigned."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in places:
            return f" ({places[path[:depth]]})"
    below = next((place for assigned, place in places.items()
                  if assigned[: len(path)] == path), None)
    return f" ({below})" if below else ""


def _in_use(value: Any) -> bool:
    """GitLab counts a removed setting only when its value is not nil or an empty hash."""
    return value is not None and value != {}


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, str(key)))


def _opaque(value: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The places holding something the harness could not write as data (``{"__ruby__": ...}``:
    an object, a Proc, a Range)."""
    if isinstance(value, dict):
        if "__ruby__" in value:
            yield path
        else:
            for key, item in value.items():
                yield from _opaque(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _opaque(item, path)


def check_known(recorded: dict[str, Any], version: Version | str, *, host: str = "gitlab.rb",
                known: KnownSettings | None = None) -> list[Finding]:
    """Every recorded name and key against the settings of ``version``."""
    known = known or known_settings()
    version = parse_version(version)
    checked = known.checked(version)
    places = _where(recorded)
    settings = recorded.get("settings") or {}
    findings: list[Finding] = []

    def add(severity: str, code: str, path: tuple[str, ...], message: str, fix: str) -> None:
        findings.append(Finding(severity, code, host,
                                f"{message}{_place(places, path)}", fix))

    if checked != version:
        add(WARNING, "omnibus-version-newer", (),
            f"GitLab {show(version)} is newer than the last release checked "
            f"({show(known.latest)}); its settings are checked as {show(known.latest)}'s",
            "regenerate simulator/omnibus/data/omnibus_settings.yml with "
            "scripts/omnibus_settings.py")
    removed: list[str] = []
    for name, value in settings.items():
        path: tuple[str, ...] = (name,)
        removal = known.removal(path, version)
        if removal is not None and _in_use(value):
            removed.append(removal.message())
            add(ERROR, "omnibus-removed-setting", path, removal.message(),
                f"remove {name} (see GitLab's note; {removal.where})")
            continue
        if name == "roles":
            for role in value if isinstance(value, list) else [value]:
                if known.role(str(role), version) is None:
                    presence = known.roles.get(str(role))
                    extra = (f"; it exists from {show(presence.since)}" if presence and
                             checked < presence.since else "")
                    add(ERROR, "omnibus-unknown-role", path,
                        f"GitLab {show(version)} has no role {role}{extra}",
                        "use a role of this release (GitLab's roles: application_role, "
                        "sidekiq_role, postgres_role, redis_master_role, ...)")
            continue
        if not known.top_level(name, version):
            add(ERROR, "omnibus-unknown-top-level", path,
                f"GitLab {show(version)} has no setting {name}: gitlab-ctl reconfigure stops "
                f"with \"undefined method\" on it",
                "check the name against gitlab.rb.template of this release")
            continue
        if not isinstance(value, dict):
            continue
        for key, item in value.items():
            setting = (name, str(key))
            status = known.setting(name, str(key), version)
            text = label(setting)
            if status.state == "removed" and status.removal and _in_use(item):
                removed.append(status.removal.message())
                add(ERROR, "omnibus-removed-setting", setting, status.removal.message(),
                    f"remove {text} (see GitLab's note; {status.removal.where})")
            elif status.state == "not-yet" and status.presence:
                add(ERROR, "omnibus-setting-too-new", setting,
                    f"{text} exists from GitLab {show(status.presence.since)} "
                    f"({status.presence.where}); this node runs {show(version)}",
                    "remove it, or set sidekiq_gitlab_version to the release the node runs")
            elif status.state == "gone" and status.presence:
                until = status.presence.until or known.latest
                add(ERROR, "omnibus-setting-gone", setting,
                    f"{text} was last in GitLab {show(until)}; this node runs {show(version)}",
                    "remove it (check GitLab's upgrade notes for its replacement)")
            elif status.state == "unknown":
                add(ERROR, "omnibus-unknown-setting", setting,
                    f"{text} is not a setting of GitLab {show(version)} (nor of any release "
                    f"from {show(known.first)} to {show(known.latest)}): gitlab-ctl reconfigure "
                    "would store it and ignore it",
                    "check the spelling against gitlab.rb.template of this release")
            elif status.state == "present":
                deprecation = known.deprecation(setting, version)
                if deprecation is not None and _in_use(item):
                    add(WARNING, "omnibus-deprecated-setting", setting,
                        deprecation.deprecation_message(),
                        f"plan its removal before GitLab {show(deprecation.removed)}")
            if isinstance(item, dict):  # removals deeper down (object_store connections)
                for sub, sub_value in _leaves(item, setting):
                    if len(sub) > 2:
                        removal = known.removal(sub, version)
                        if removal is not None and len(removal.path) == len(sub) and \
                                _in_use(sub_value):
                            removed.append(removal.message())
                            add(ERROR, "omnibus-removed-setting", sub, removal.message(),
                                f"remove {label(sub)}")
        if name not in known.settings and name not in NAMED_BY_OPERATOR:
            add(WARNING, "omnibus-unchecked", path,
                f"the keys of {name}[...] are not in this project's settings data, so they "
                "were not checked", "add it to TOPS in scripts/omnibus_settings.py")
    for opaque in dict.fromkeys(_opaque(settings, ())):
        add(ERROR, "omnibus-not-plain-data", opaque,
            f"{label(opaque)} is not plain data (strings, numbers, true/false, nil, arrays, "
            "hashes)", "write a literal value")
    if removed:
        findings.append(Finding(
            ERROR, "omnibus-reconfigure-aborts", host,
            "Removed configurations found in gitlab.rb. Aborting reconfigure. (what "
            f"gitlab-ctl reconfigure of GitLab {show(version)} prints after: "
            + " ".join(removed) + ")",
            "remove the settings listed above"))
    return findings


def _shown(path: tuple[str, ...], value: Any, secrets: dict[tuple[str, ...], str]) -> str:
    if path in secrets:
        return f"the value of {secrets[path]} (secret, not shown)"
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:190] + "..."


def check_expected(recorded: dict[str, Any], expected: GitlabRb, *, redacted: bool = False
                   ) -> list[Finding]:
    """The recorded settings must be exactly the ones the inventory asked for."""
    want = {s.path: v for s, v in zip(expected.settings(),
                                      _values(expected, redacted), strict=True)}
    secrets = expected.secret_paths()
    places = _where(recorded)
    got: dict[tuple[str, ...], Any] = {}
    for name, value in (recorded.get("settings") or {}).items():
        if (name,) in want or not isinstance(value, dict):
            got[(name,)] = value
        else:
            for key, item in value.items():
                got[(name, str(key))] = item
    findings = []
    for path, value in want.items():
        if path not in got:
            findings.append(Finding(
                ERROR, "omnibus-missing", expected.host,
                f"{label(path)} is not in the file: the inventory asks for it",
                "render the file again from the inventory (playbooks/gitlab_rb.yml)"))
        elif got[path] != value:
            findings.append(Finding(
                ERROR, "omnibus-differs", expected.host,
                f"{label(path)} is {_shown(path, got[path], secrets)}{_place(places, path)}; "
                f"the inventory asks for {_shown(path, value, secrets)}",
                "render the file again from the inventory; do not edit it by hand"))
    for path in got:
        if path not in want:
            findings.append(Finding(
                ERROR, "omnibus-unexpected", expected.host,
                f"{label(path)} is set{_place(places, path)} but the inventory does not ask "
                "for it", "remove it from the managed file (your own settings belong in "
                          "gitlab.rb itself)"))
    return findings


def _values(expected: GitlabRb, redacted: bool) -> list[Any]:
    tree = expected.tree(redacted=redacted)
    out = []
    for setting in expected.settings():
        node: Any = tree
        for key in setting.path:
            node = node[key]
        out.append(node)
    return out


def check(recorded: dict[str, Any], *, expected: GitlabRb | None = None,
          version: Version | str | None = None, redacted: bool = False,
          host: str | None = None, known: KnownSettings | None = None) -> list[Finding]:
    """Both checks: the release's settings, then (with ``expected``) the inventory's."""
    if version is None:
        if expected is None:
            raise OmnibusError("checking a gitlab.rb needs the GitLab version it is for")
        version = expected.version
    name = host or (expected.host if expected else "gitlab.rb")
    findings = check_known(recorded, version, host=name, known=known)
    if expected is not None:
        findings += check_expected(recorded, expected, redacted=redacted)
    return findings


# -- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.omnibus.validate",
        description="Check a gitlab.rb against the settings of a GitLab release, without GitLab.")
    parser.add_argument("file")
    parser.add_argument("--version", required=True, help="the GitLab release, e.g. 17.5")
    parser.add_argument("--harness", required=True,
                        help="roles/gitlab_omnibus/files/record_settings.rb")
    parser.add_argument("--ruby", default="ruby")
    parser.add_argument("--map", action="append", default=[], metavar="FROM=TO",
                        help="read from_file FROM at TO")
    args = parser.parse_args(argv)
    try:
        maps = [tuple(m.split("=", 1)) for m in args.map]
        if any(len(m) != 2 for m in maps):
            raise OmnibusError("--map needs FROM=TO")
        syntax_check(args.file, ruby=args.ruby)
        recorded = record(args.file, harness=args.harness, ruby=args.ruby,
                          maps=[(m[0], m[1]) for m in maps])
        findings = check(recorded, version=args.version, host=args.file)
    except OmnibusError as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding.render())
    count = len(errors(findings))
    print(f"{args.file}: {count} error(s), {len(findings) - count} warning(s)", file=sys.stderr)
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
