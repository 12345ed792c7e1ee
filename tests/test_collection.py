"""The repository is the Ansible collection sidekiq_fleet.fleet (scripts/check_collection.sh builds,
installs and uses it from outside the tree; these are the quick checks of its layout)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "filter" / "sidekiq_fleet.py"


def test_galaxy_metadata_names_the_collection():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("sidekiq_fleet", "fleet")
    for private in ("simulator", "tests", "molecule", "inventories", "collections", ".venv"):
        assert private in galaxy["build_ignore"], private
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=")


def test_in_repository_collections_path_is_this_checkout():
    link = ROOT / "collections" / "ansible_collections" / "sidekiq_fleet" / "fleet"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == ROOT


def test_plugins_do_not_edit_the_python_path():
    for path in (ROOT / "plugins").rglob("*.py"):
        text = path.read_text()
        assert "sys.path" not in text, path
        assert "import _plain" not in text and ", _plain" not in text, path


def test_filters_without_the_python_package_say_how_to_install_it():
    code = (
        "import sys, importlib.util\n"
        "from ansible.errors import AnsibleFilterError\n"
        "sys.modules['simulator'] = None\n"
        f"spec = importlib.util.spec_from_file_location('f', {str(PLUGIN)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "try:\n"
        "    spec.loader.exec_module(module)\n"
        "except Exception as exc:\n"
        "    print(isinstance(exc, AnsibleFilterError), exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("True "), out.stdout + out.stderr
    assert "pip install sidekiq-fleet" in out.stdout
