"""Kamailio (the SBC, with deploy/kamailio/kamailio.cfg) and sipp (a customer PBX registrar) on loopback,
for the SBC end-to-end tests. `missing()` names what is not installed, so tests can skip saying so."""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from teamsvoice.sbc.kamailio import KamailioSbc

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
REGISTRAR_SCENARIO = ROOT / "tests" / "sbc" / "pbx_registrar.xml"
MODULES = ("db_sqlite.so", "jsonrpcs.so", "xhttp.so", "uac.so", "dispatcher.so", "ipops.so")
MODULE_DIRS = [Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"), Path("/usr/lib/aarch64-linux-gnu/kamailio/modules"),
               Path("/usr/lib/kamailio/modules"), Path("/usr/local/lib64/kamailio/modules")]


def missing() -> str | None:
    """Why the SBC tests cannot run here, or None."""
    absent = [name for name in ("kamailio", "sipp") if shutil.which(name) is None]
    if absent:
        return (f"{' and '.join(absent)} not installed (Debian: kamailio kamailio-sqlite-modules kamailio-json-modules "
                "sip-tester)")
    directory = next((d for d in MODULE_DIRS if (d / "uac.so").exists()), None)
    lacking = [m for m in MODULES if directory is None or not (directory / m).exists()]
    if lacking:
        return f"Kamailio modules missing: {', '.join(lacking)} (kamailio-sqlite-modules, kamailio-json-modules)"
    return None


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_sip_port() -> int:
    """A port free for both UDP and TCP (Kamailio listens on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port")


def module_missing(name: str) -> bool:
    return not any((d / name).exists() for d in MODULE_DIRS)


def tls_module_missing() -> bool:
    return module_missing("tls.so")


def self_signed_tls_cfg(directory: Path, wildcard: str) -> Path:
    """A tls.cfg for Kamailio with a self-signed certificate of `*.<domain>` (the provider's wildcard)."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wildcard)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(wildcard)]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "sbc.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "sbc.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    cfg = directory / "tls.cfg"
    cfg.write_text(f"[server:default]\nmethod = TLSv1.2+\ncertificate = {directory / 'sbc.pem'}\n"
                   f"private_key = {directory / 'sbc.key'}\nverify_certificate = no\nrequire_certificate = no\n\n"
                   "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n")
    return cfg


class Kamailio:
    def __init__(self, directory: Path, fqdn: str = "sbc.test.example", tls_cfg: Path | None = None,
                 db_url: str | None = None) -> None:
        """`db_url`: teamsvoice's spelling of Kamailio's database (default: a SQLite file in `directory`)."""
        self.directory, self.fqdn, self.tls_cfg = directory, fqdn, tls_cfg
        self.tls_port = free_port(socket.SOCK_STREAM) if tls_cfg else None
        self.db_url = db_url or f"sqlite:///{directory / 'kamailio.sqlite3'}"
        self.postgres = self.db_url.startswith("postgresql://")
        self.sip_port, self.rpc_port = free_sip_port(), free_port(socket.SOCK_STREAM)
        self.rpc_url = f"http://127.0.0.1:{self.rpc_port}/RPC"
        self.process: subprocess.Popen | None = None
        KamailioSbc(self.db_url, self.rpc_url).ensure_schema()

    def start(self) -> "Kamailio":
        kamailio_url = "postgres://" + self.db_url.removeprefix("postgresql://") if self.postgres else self.db_url
        env = os.environ | {"TEAMSVOICE_SBC_FQDN": self.fqdn, "TEAMSVOICE_SBC_DB_URL": kamailio_url}
        command = ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-n", "1", "-Y", str(self.directory),
                   "-A", f"SBC_SIP_PORT={self.sip_port}", "-A", f"SBC_RPC_PORT={self.rpc_port}", "-A", "SBC_REG_TIMER=1"]
        if self.postgres:
            command += ["-A", "WITH_POSTGRES"]
        if self.tls_cfg is not None:
            command += ["-A", "WITH_TLS", "-A", f'SBC_TLS_CFG="{self.tls_cfg}"', "-A", f"SBC_TLS_PORT={self.tls_port}"]
        log = open(self.directory / "kamailio.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=self.directory)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kamailio exited: {(self.directory / 'kamailio.log').read_text()[-3000:]}")
            try:
                if httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "method": "core.version", "id": 1}, timeout=1,
                              trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("kamailio's JSON-RPC did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def rpc(self, method: str, *params: object) -> dict:
        return httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1},
                          timeout=5, trust_env=False).json()


@dataclass
class SipMessage:
    direction: str  # "received" or "sent" (by sipp)
    text: str
    at: float = 0.0  # when sipp logged it (epoch seconds)

    @property
    def first_line(self) -> str:
        return self.text.split("\r\n", 1)[0].split("\n", 1)[0]

    def header(self, name: str) -> str | None:
        match = re.search(rf"^{re.escape(name)}:\s*(.*?)\s*$", self.text, re.MULTILINE | re.IGNORECASE)
        return match.group(1) if match else None


class SippRegistrar:
    """sipp playing the customer PBX registrar (tests/sbc/pbx_registrar.xml): one user and its password, or
    `users` (user -> password) for many."""

    def __init__(self, directory: Path, user: str, password: str, port: int | None = None,
                 users: dict[str, str] | None = None, challenge_after_ms: int = 0) -> None:
        """`challenge_after_ms`: the registrar waits that long before its 401 (a real PBX is not on loopback: an
        SBC that went on before the challenge came back lost its un-REGISTER)."""
        self.directory, self.user, self.password = directory, user, password
        self.users = users
        self.challenge_after_ms = challenge_after_ms
        self.port = port or free_port()
        self.runs = 0
        self.process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.directory / f"sipp-{self.port}-{self.runs}.log"

    def start(self) -> "SippRegistrar":
        self.runs += 1
        users = self.users or {self.user: self.password}
        (self.directory / "users.csv").write_text("SEQUENTIAL\n" + "".join(f"{u};{p}\n" for u, p in users.items()))
        scenario = REGISTRAR_SCENARIO
        if self.challenge_after_ms:
            scenario = self.directory / "pbx_registrar_slow.xml"
            scenario.write_text(REGISTRAR_SCENARIO.read_text().replace(
                '<recv request="REGISTER" />', f'<recv request="REGISTER" />\n  <pause milliseconds="{self.challenge_after_ms}" />', 1))
        command = ["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.port),
                   "-inf", "users.csv", "-infindex", "users.csv", "0", "-trace_msg", "-message_file", str(self.log),
                   "-nostdin", "-trace_err", "-error_file", str(self.directory / "sipp-errors.log")]
        self.process = subprocess.Popen(command, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        if self.process.poll() is not None:
            raise RuntimeError(f"sipp exited with {self.process.returncode}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, password: str) -> None:
        """The PBX administrator changed the user's password at the PBX."""
        self.stop()
        self.password = password
        self.start()

    def messages(self) -> list[SipMessage]:
        if not self.log.exists():
            return []
        raw = self.log.read_bytes().replace(b"\x00", b"").decode("utf-8", "replace")
        found = []
        parts = re.split(r"^-{20,} (\S+ \S+)$", raw, flags=re.MULTILINE)
        for stamp, block in zip(parts[1::2], parts[2::2]):
            match = re.search(r"^(UDP message received \[\d+\] bytes :|UDP message sent \(\d+ bytes\):)\s*\n+(.*)", block,
                              re.MULTILINE | re.DOTALL)
            if match:
                at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
                found.append(SipMessage("received" if "received" in match.group(1) else "sent", match.group(2).strip(), at))
        return found

    def wait_for(self, predicate, timeout: float = 20, after: int = 0) -> SipMessage:  # noqa: ANN001
        """The first message (from index `after` of this run) that matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages()[after:]:
                if predicate(message):
                    return message
            time.sleep(0.1)
        raise AssertionError(f"sipp saw no such message in {timeout} s; it saw: "
                             f"{[m.first_line for m in self.messages()][-20:]}")


def digest_params(authorization: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="?([^",]*)"?', authorization.removeprefix("Digest ")))


def digest_valid(message: SipMessage, user: str, password: str, method: str = "REGISTER",
                 header: str = "Authorization") -> bool:
    """RFC 2617 digest without qop, as our challenges ask."""
    authorization = message.header(header)
    if authorization is None:
        return False
    p = digest_params(authorization)
    ha1 = hashlib.md5(f"{user}:{p['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{p['uri']}".encode()).hexdigest()
    return p.get("username") == user and p["response"] == hashlib.md5(f"{ha1}:{p['nonce']}:{ha2}".encode()).hexdigest()


class UdpPeer:
    """A bare SIP peer on a loopback UDP socket (Microsoft's proxy, or a PBX that takes calls)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host`: a loopback address (127.0.0.2 is another machine to Kamailio)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]

    def send(self, port: int, text: str) -> None:
        self.sock.sendto(text.replace("\r\n", "\n").replace("\n", "\r\n").encode(), ("127.0.0.1", port))

    def receive(self, first_line_prefix: str, timeout: float = 10) -> SipMessage:
        """The next datagram whose first line starts with the prefix (others, e.g. REGISTERs, are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65535).decode()
            if data.startswith(first_line_prefix):
                return SipMessage("received", data, time.time())

    def close(self) -> None:
        self.sock.close()
