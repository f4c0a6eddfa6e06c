"""freeDiameter as an independent gateway: our extension (freediameter/ratel_gw.c),
built with gcc against libfreediameter-dev, loaded into freeDiameterd."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

SOURCE = Path(__file__).parent / "freediameter" / "ratel_gw.c"
EXTENSIONS = Path("/usr/lib/freeDiameter")
IDENTITY = "fdgw.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(folder: Path) -> Path:
    """Compile the extension (as the issue says: gcc -shared -fPIC ... -lfdcore -lfdproto)."""
    target = folder / "ratel_gw.fdx"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            "-shared",
            "-fPIC",
            "-o",
            str(target),
            str(SOURCE),
            "-lfdcore",
            "-lfdproto",
            "-lpthread",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def certificate(folder: Path, identity: str = IDENTITY) -> tuple[Path, Path]:
    """freeDiameter 1.2.1 wants TLS_Cred even when every peer is No_TLS, with a
    certificate whose CN is its Identity: a self-signed one."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not cert.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                f"/CN={identity}",
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


class FreeDiameterGateway:
    """freeDiameterd with ratel_gw loaded, connected to ratel at ``port``."""

    def __init__(self, folder: Path, ocs_port: int, parameters: str) -> None:
        self.folder = folder
        self.log = folder / f"ratel_gw_{time.monotonic_ns()}.log"
        extension = build(folder)
        cert, key = certificate(folder)
        conf = folder / "freeDiameter.conf"
        # dict_nasreq before dict_dcca and dict_dcca_3gpp: they build on its AVPs
        conf.write_text(f"""
Identity = "{IDENTITY}";
Realm = "gw.test";
Port = {free_port()};
SecPort = {free_port()};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
NoRelay;
AppServThreads = 4;
TLS_Cred = "{cert}", "{key}";
TLS_CA = "{cert}";
LoadExtension = "{EXTENSIONS / "dict_nasreq.fdx"}";
LoadExtension = "{EXTENSIONS / "dict_dcca.fdx"}";
LoadExtension = "{EXTENSIONS / "dict_dcca_3gpp.fdx"}";
LoadExtension = "{extension}" : "{parameters} out={self.log}";
ConnectPeer = "ocs.ratel.local" {{ ConnectTo = "127.0.0.1"; Port = {ocs_port}; No_TLS; }};
""")
        self.stdout = (folder / "freeDiameterd.out").open("w")
        self.process = subprocess.Popen(
            ["freeDiameterd", "-c", str(conf)],
            stdout=self.stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def output(self) -> str:
        return (self.folder / "freeDiameterd.out").read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout.close()
