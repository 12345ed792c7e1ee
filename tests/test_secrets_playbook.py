"""playbooks/secrets.yml never writes a secret in clear text, whatever the Vault file's layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WANTED = {
    "vault_redis_app_password",
    "vault_redis_admin_password",
    "vault_postgresql_app_password",
    "vault_gitaly_auth_token",
    "vault_sidekiq_web_password",
    "vault_redis_replication_password",
    "vault_redis_sentinel_password",
    "vault_redis_sentinel_auth_password",
}
CANARY = "canary-Zq9xV2-must-never-appear-in-clear"


def _env(password_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(password_file)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    return env


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is not installed next to this Python (run `make setup`)")
    return str(exe)


def _run_secrets(vault_file: Path, password_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_tool("ansible-playbook"), "-i", "localhost,", str(ROOT / "playbooks" / "secrets.yml"),
         "-e", f"secrets_file={vault_file}", "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=ROOT, env=_env(password_file), capture_output=True, text=True, timeout=300,
    )


def _view(vault_file: Path, password_file: Path) -> dict:
    out = subprocess.run(
        [_tool("ansible-vault"), "view", str(vault_file)],
        cwd=ROOT, env=_env(password_file), capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return yaml.safe_load(out)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text("test-vault-password-1234\n")
    path.chmod(0o600)
    return path


def test_whole_file_vault_stays_encrypted_as_a_whole(tmp_path, password_file):
    vault_file = tmp_path / "vault.yml"
    vault_file.write_text(f"---\nvault_canary: {CANARY}\nvault_redis_app_password: kept-as-is\n")
    subprocess.run([_tool("ansible-vault"), "encrypt", str(vault_file)], cwd=ROOT,
                   env=_env(password_file), check=True, capture_output=True, timeout=60)

    result = _run_secrets(vault_file, password_file)
    assert result.returncode == 0, result.stdout + result.stderr
    raw = vault_file.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;"), "written back without whole-file encryption"
    assert CANARY not in raw and "kept-as-is" not in raw and "vault_" not in raw
    assert CANARY not in result.stdout + result.stderr
    data = _view(vault_file, password_file)
    assert data["vault_canary"] == CANARY and data["vault_redis_app_password"] == "kept-as-is"
    assert set(data) >= WANTED
    generated = WANTED - {"vault_redis_app_password"}
    assert all(isinstance(data[k], str) and len(data[k]) >= 32 for k in generated)
    assert oct(vault_file.stat().st_mode & 0o777) == "0o600"

    # A second run finds every secret and changes nothing.
    before = vault_file.read_bytes()
    result = _run_secrets(vault_file, password_file)
    assert result.returncode == 0 and vault_file.read_bytes() == before


def test_new_file_has_each_value_encrypted(tmp_path, password_file):
    vault_file = tmp_path / "group_vars" / "all" / "vault.yml"
    result = _run_secrets(vault_file, password_file)
    assert result.returncode == 0, result.stdout + result.stderr
    raw = vault_file.read_text()
    assert not raw.startswith("$ANSIBLE_VAULT;")
    keys = {line.split(":")[0] for line in raw.splitlines() if line.startswith("vault_")}
    assert keys == WANTED and raw.count("!vault |") == len(WANTED)
