"""A self-signed TLS certificate for trying the docker-compose deployment on localhost.

    python deploy/selfsigned.py DIR [HOST ...]

Writes ``DIR/tls.crt`` and ``DIR/tls.key`` (for ``localhost``, ``127.0.0.1`` and each HOST)
unless they exist, so a real certificate put there is never overwritten. Browsers warn about
it (nobody they trust signed it); in production put your own certificate in the ``certs``
volume instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_certificate(directory: Path, hosts: list[str]) -> bool:
    """Create the key and certificate in ``directory``; False if a certificate is there."""
    certificate, key_file = directory / "tls.crt", directory / "tls.key"
    if certificate.exists() and key_file.exists():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    created = write_certificate(Path(sys.argv[1]), ["localhost", "127.0.0.1", *sys.argv[2:]])
    print("certificate created" if created else "certificate present: kept")
