"""Helpers for tests that start real ``dask scheduler`` / ``dask worker`` processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@contextlib.contextmanager
def local_cluster(
    tmp: Path, n_workers: int = 2, *, protocol: str = "tcp", tls: dict[str, str] | None = None,
    memory_limit: str = "auto",
) -> Iterator[Path]:
    """Run deploy/local/start-cluster.sh; yield the scheduler file; stop everything after."""
    env = _env()
    env["PROTOCOL"] = protocol
    env["MEMORY_LIMIT"] = memory_limit
    if tls:
        env.update(TLS_CA=tls["ca"], TLS_CERT=tls["cert"], TLS_KEY=tls["key"])
    d = tmp / "dask-local"
    out = subprocess.run(
        ["bash", str(REPO / "deploy/local/start-cluster.sh"), str(n_workers), str(d)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    try:
        assert out.returncode == 0, out.stderr
        sf = Path(out.stdout.strip().splitlines()[-1])
        wait_for_workers(sf, n_workers, tls=tls)
        yield sf
    finally:
        subprocess.run(["bash", str(REPO / "deploy/local/stop-cluster.sh"), str(d)], env=env,
                       timeout=30)


def worker_pids(tmp: Path) -> list[int]:
    """PIDs of the worker processes started by :func:`local_cluster` in ``tmp``."""
    f = tmp / "dask-local" / "workers.pid"
    return [int(x) for x in f.read_text().split()]


def kill(pid: int) -> None:
    """SIGKILL one process (ignored when it is already gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def worker_processes(client, tmp: Path) -> dict[str, tuple[int, int]]:
    """``{address: (worker pid, nanny pid)}`` of the workers started in ``tmp``.

    ``dask worker`` runs a nanny (the pid in ``workers.pid``) that spawns the real worker
    process; killing the worker alone makes the nanny start a new one.
    """
    import psutil

    nannies = set(worker_pids(tmp))
    out = {}
    for addr, pid in client.run(os.getpid).items():
        ppid = psutil.Process(pid).ppid()
        assert ppid in nannies, f"worker {addr} (pid {pid}) is not a child of a nanny {nannies}"
        out[addr] = (pid, ppid)
    return out


def kill_worker(pids: tuple[int, int]) -> None:
    """SIGKILL a nanny first (so it cannot restart its worker), then its worker."""
    worker, nanny = pids
    kill(nanny)
    kill(worker)


def wait_for_workers(
    sf: Path, n: int, tls: dict[str, str] | None = None, timeout: float = 60
) -> None:
    from distributed import Client

    security = None
    if tls:
        from distributed.security import Security

        security = Security(tls_ca_file=tls["ca"], tls_client_cert=tls["cert"],
                            tls_client_key=tls["key"], require_encryption=True)
    with Client(scheduler_file=str(sf), security=security, timeout="30s") as c:
        c.wait_for_workers(n, timeout=timeout)


def make_tls_certs(tmp: Path) -> dict[str, str]:
    """A throwaway CA and one certificate/key signed by it (for localhost), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tomochunk test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": tmp / "ca.pem", "cert": tmp / "cert.pem", "key": tmp / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return {k: str(v) for k, v in paths.items()}


def wait_until(pred, timeout: float = 30.0, step: float = 0.1) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(step)
    return False
