"""The fleet CA: a certificate per node with its names; keys stay on their node."""

from __future__ import annotations

import os

import pytest
import testinfra
from conftest import host_spec

NODES = {
    "mol-redis": "172.28.51.11",
    "mol-postgresql": "172.28.51.12",
    "mol-gitaly": "172.28.51.13",
}


@pytest.mark.parametrize(("name", "address"), sorted(NODES.items()))
def test_node_certificate_names_the_node_and_chains_to_the_fleet_ca(name, address):
    node = testinfra.get_host(host_spec(name))
    text = node.check_output(
        'python3 -c "import sys; from cryptography import x509; '
        "c = x509.load_pem_x509_certificate(open('/etc/ssl/sidekiq-fleet/node.crt', 'rb').read()); "
        "print(c.subject.rfc4514_string()); print(c.issuer.rfc4514_string()); "
        'print(c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)"'
    )
    assert f"CN={name}" in text and "CN=sidekiq-fleet CA" in text
    assert f"IPAddress(value={address})" in text and f"DNSName(value='{name}')" in text
    key = node.file("/etc/ssl/sidekiq-fleet/private/node.key")
    assert (key.mode, key.user, key.group) == (0o640, "root", "ssl-cert")
    assert node.file("/etc/ssl/sidekiq-fleet/private").mode == 0o710
    # The CA's key lives on the controller only.
    assert not node.run("grep -rl 'PRIVATE KEY' /etc/ssl/sidekiq-fleet/ca.crt").stdout


def test_ca_key_is_private_on_the_controller():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "pki", "ca.key")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
