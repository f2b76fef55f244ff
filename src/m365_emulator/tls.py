"""Self-signed CA and server certificate: MSAL only accepts https authorities, so the emulator needs TLS
that clients can trust by pointing at one CA file."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert_path: Path
    cert_path: Path
    key_path: Path


def ensure_tls_material(directory: Path) -> TlsMaterial:
    """Return the CA and server certificate in `directory`, generating them on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    material = TlsMaterial(
        ca_cert_path=directory / "emulator-ca.pem",
        cert_path=directory / "emulator-server.pem",
        key_path=directory / "emulator-server.key",
    )
    if all(path.exists() for path in (material.ca_cert_path, material.cert_path, material.key_path)):
        return material
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = _ca_certificate(ca_key)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_cert = _server_certificate(server_key, ca_key, ca_cert)
    material.ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    material.key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    material.key_path.chmod(0o600)
    return material


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    return start, start + datetime.timedelta(days=3650)


def _ca_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "M365 Emulator Local CA")])
    not_before, not_after = _validity()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate
) -> x509.Certificate:
    not_before, not_after = _validity()
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
