"""ansible-core's own YAML data files go through fleetsim's parse cache (start-up time), and
give exactly what ansible-core parses itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_metadata_is_cached_and_identical(tmp_path, monkeypatch):
    from ansible.utils.collection_loader import _collection_finder as finder
    from ansible.utils.collection_loader._collection_meta import _meta_yml_to_dict

    from simulator.fleet.inventory import _cache_ansible_data
    from simulator.inputs import cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(finder, "_meta_yml_to_dict", _meta_yml_to_dict)
    _cache_ansible_data()
    _cache_ansible_data()  # a second call does not wrap the wrapper
    cached = finder._meta_yml_to_dict
    assert cached is not _meta_yml_to_dict and cached.fleetsim_cached
    import ansible

    raw = (Path(ansible.__file__).parent / "config" / "ansible_builtin_runtime.yml").read_bytes()
    expected = _meta_yml_to_dict(raw, ("ansible.builtin", "runtime.yml"))
    assert cached(raw, ("ansible.builtin", "runtime.yml")) == expected
    entries = list(cache_dir().glob("ansible-*-runtime-*.json"))
    assert len(entries) == 1
    # The second read comes from the entry (a marked entry shows it), a damaged one is ignored.
    entries[0].write_text(json.dumps({"marked": "from the cache"}))
    assert cached(raw, None) == {"marked": "from the cache"}
    entries[0].write_text("{not json")
    assert cached(raw, None) == expected
    monkeypatch.setenv("FLEETSIM_CACHE", "off")
    assert cached(raw, None) == expected


def test_settings_definitions_are_cached_and_identical(tmp_path):
    """ansible-core's settings (config/base.yml) are read once per process, when
    ansible.constants is first imported: a fresh interpreter reads them through the cache and
    ends with the same settings as one that does not use the cache."""
    script = (
        "import hashlib, json, sys\n"
        "from simulator.fleet.inventory import load_fleet\n"
        "load_fleet(sys.argv[1])\n"
        "import ansible.constants as C\n"
        "from ansible.config.manager import ConfigManager\n"
        "print(getattr(ConfigManager._read_config_yaml_file, 'fleetsim_cached', False))\n"
        "defs = json.dumps(C.config._base_defs, sort_keys=True, default=repr)\n"
        "print(C.config._base_defs['DEFAULT_FORKS']['default'], hashlib.sha256(defs.encode())"
        ".hexdigest())\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = []
    for cache in ("off", "on", "on"):  # no cache; filling it; reading it
        done = subprocess.run([sys.executable, "-c", script, str(ROOT / "inventories/example")],
                              cwd=ROOT, env={**env, "FLEETSIM_CACHE": cache},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout.split())
    assert [r[0] for r in runs] == ["True"] * 3
    assert runs[0][1] == "5" and runs[0][1:] == runs[1][1:] == runs[2][1:]
    names = sorted(p.name.split("-")[2] for p in (tmp_path / "cache/fleetsim").glob("ansible-*"))
    assert names == ["config", "runtime"]
