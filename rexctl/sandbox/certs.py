"""The sandbox's certificate authority and the cache node's certificate (in-transit encryption).

ElastiCache answers TLS with a certificate that chains to Amazon's root CAs, which a task trusts
through its system store. The sandbox makes its own CA at every start (`ca.pem`, valid a week)
and signs the node's certificate with it (`node.pem`, key `node.key`, readable by the user only);
the tasks get `ca.pem` as their system store (`SSL_CERT_FILE`), so a client that verifies
certificates as on AWS trusts the node, and one that trusts nothing else does not.

The node is reached on 127.0.0.1 (see docs/sandbox.md, "REDIS_HOST and the gate"), so the node
certificate names `127.0.0.1` and `localhost`; `*.cache.amazonaws.com` is there too, for a client
that keeps the endpoint's name as the server name. Keys are EC P-256: fast to make, accepted by
every TLS 1.2/1.3 client. Made with the `cryptography` package (a dependency of moto, declared in
rexctl's own dependencies since the sandbox imports it).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

CA_NAME = "rexctl sandbox CA"
NODE_NAME = "rexctl sandbox cache node"
VALID_DAYS = 7


@dataclass(frozen=True)
class NodeCertificates:
    ca: Path  # what a task trusts (its system store in the sandbox)
    cert: Path  # the node's certificate
    key: Path  # the node's private key (0600)


def make(directory: Path) -> NodeCertificates:
    """A new CA and a node certificate signed by it, written into `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("*.cache.amazonaws.com"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    node = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NODE_NAME)]))
        .issuer_name(ca_name)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = NodeCertificates(directory / "ca.pem", directory / "node.pem", directory / "node.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(node.public_bytes(serialization.Encoding.PEM))
    fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            node_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths
