"""Fixtures of the hardening suite: one shared fuzz server process, test certificates, the suite.

The fuzz case counts per RPC are printed in pytest's terminal summary ("toolgym fuzz cases").
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hardening_support: a helper module, not a package

from hardening_support import FUZZ_COUNTS, RANDOM, ServerProc, build_corpus  # noqa: E402

from toolgym.env.tasks.suite import load_suite  # noqa: E402


@pytest.fixture(scope="session")
def suite():
    return load_suite("default")


@pytest.fixture(scope="session")
def corpus():
    """Hypothesis-drawn atoms (model outputs, hostile strings, reward configs, JSON) the fuzz tests combine."""
    return build_corpus()


@pytest.fixture(scope="session")
def fuzz_server():
    """The server every fuzz test hits: small limits so oversize cases are cheap to send."""
    srv = ServerProc(args=["--max-output-chars", "20000", "--max-batch-items", "64", "--max-sessions", "100000",
                           "--session-ttl-s", "120", "--max-message-bytes", str(4 << 20), "--sandbox-workers", "2"])
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, f"fuzz server exited with {code}:\n{srv.log()[-4000:]}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if not FUZZ_COUNTS:
        return
    tr = terminalreporter
    tr.section("toolgym fuzz cases (" + ("new random cases: TOOLGYM_FUZZ_RANDOM=1" if RANDOM else "derandomized; TOOLGYM_FUZZ_RANDOM=1 draws new ones") + ")")
    total = 0
    for rpc, d in sorted(FUZZ_COUNTS.items()):
        rate = d["cases"] / d["seconds"] if d["seconds"] else 0.0
        tr.write_line(f"{rpc:48s} {int(d['cases']):8d} cases  {d['seconds']:7.1f} s  {rate:8.0f}/s")
        total += int(d["cases"])
    tr.write_line(f"{'total':48s} {total:8d} cases")


# ---------------------------------------------------------------------------- certificates
@pytest.fixture(scope="session")
def certs():
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate (CN=alice)."""
    d = Path(tempfile.mkdtemp(prefix="toolgym-certs-"))
    try:
        _certs_cryptography(d)
    except ImportError:
        if not shutil.which("openssl"):
            pytest.skip("neither the cryptography package nor the openssl CLI is available to make test certificates")
        _certs_openssl(d)
    for p in d.iterdir():
        os.chmod(p, 0o600)
    yield {k: str(d / f"{k}.pem") for k in ("ca", "server", "server_key", "client", "client_key", "other_ca", "other_client", "other_client_key")}
    shutil.rmtree(d, ignore_errors=True)


def _certs_cryptography(d: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(k, name):
        (d / name).write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def make_ca(cn):
        k = key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(k, hashes.SHA256()))
        return k, c

    def leaf(ca_key, ca_cert, cn, server):
        k = key()
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).issuer_name(ca_cert.subject)
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2)))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return k, b.sign(ca_key, hashes.SHA256())

    ca_key, ca = make_ca("toolgym test CA")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    sk, sc = leaf(ca_key, ca, "localhost", True)
    (d / "server.pem").write_bytes(sc.public_bytes(serialization.Encoding.PEM))
    write_key(sk, "server_key.pem")
    ck, cc = leaf(ca_key, ca, "alice", False)
    (d / "client.pem").write_bytes(cc.public_bytes(serialization.Encoding.PEM))
    write_key(ck, "client_key.pem")
    oca_key, oca = make_ca("some other CA")
    (d / "other_ca.pem").write_bytes(oca.public_bytes(serialization.Encoding.PEM))
    ok, oc = leaf(oca_key, oca, "mallory", False)
    (d / "other_client.pem").write_bytes(oc.public_bytes(serialization.Encoding.PEM))
    write_key(ok, "other_client_key.pem")


def _certs_openssl(d: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    for ca in ("ca", "other_ca"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{ca}_key.pem",
            "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}")
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, ca, cn, ext in (("server", "ca", "localhost", True), ("client", "ca", "alice", False), ("other_client", "other_ca", "mallory", False)):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}_key.pem", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}_key.pem", "-CAcreateserial", "-out", f"{name}.pem",
            "-days", "2", *(["-extfile", "san.cnf"] if ext else []))
