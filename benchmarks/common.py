"""What every benchmark shares: progress lines, percentiles and a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TextIO

import httpx
import psycopg
from sqlalchemy.engine import make_url

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def log(message: str) -> None:
    """Progress for the operator; stdout is reserved for the one JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def psycopg_conninfo(url: str) -> str:
    """A SQLAlchemy URL as the libpq URI psycopg wants (no "+psycopg" driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: a value that was actually observed (NaN for no values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


@contextmanager
def scratch_pg_database(name: str, *, keep: bool) -> Iterator[str]:
    """Create database `name` on the local server, yield its URL, and drop it after, always."""
    admin = psycopg_conninfo(f"{PG_SERVER}/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"created database {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        if keep:
            log(f"kept database {name} (--keep)")
        else:
            # FORCE: a server subprocess or a failed run may leave connections behind.
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped database {name}")


@contextmanager
def scratch_database(*, url: str | None, postgres: bool, name: str, keep: bool
                     ) -> Iterator[str]:
    """The database URL to benchmark: `url` as given, else a scratch PostgreSQL database or
    SQLite file called `name`, removed after (unless `keep`)."""
    if url:
        yield url
        return
    if postgres:
        with scratch_pg_database(f"{name}_{os.getpid()}", keep=keep) as scratch:
            yield scratch
        return
    folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
    try:
        yield f"sqlite:///{folder / 'bench.db'}"
    finally:
        if keep:
            log(f"kept {folder} (--keep)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            log(f"removed {folder}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def figures(latencies_s: Sequence[float], done: int, span_s: float) -> dict[str, float]:
    """p50 and p99 in ms, and completions per second over the span."""
    return {
        "p50_ms": round(percentile(latencies_s, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies_s, 0.99) * 1000, 2),
        "per_s": round(done / span_s, 1) if span_s > 0 else 0.0,
    }


ROOT = Path(__file__).resolve().parent.parent


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user and system) a process has used so far; None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if this process dies without unwinding (e.g. SIGKILL).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextmanager
def uvicorn_server(env: dict[str, str], log_file: TextIO, *, app: str = "app.main:app"
                   ) -> Iterator[tuple[str, int]]:
    """The real server (`uvicorn <app>`, one worker) with `env` on a free port, ready (its
    /readyz answered); yields its base URL and pid, and stops it on the way out."""
    port = free_port()
    command = [str(ROOT / ".venv" / "bin" / "uvicorn"), app, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log_file,
                               stderr=subprocess.STDOUT,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready within 60 s")
            time.sleep(0.2)
        log(f"server pid {process.pid} ready on {base}")
        yield base, process.pid
    finally:
        process.terminate()
        try:
            # uvicorn waits for requests in flight; one stuck on the pool would take 30 s.
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log(f"server stopped (status {process.returncode})")


@asynccontextmanager
async def lanes(base: str, count: int, timeout_s: float
                ) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` independent clients (phones, chat senders), one keep-alive connection each, made
    up front.

    One shared client with `count` connections costs the load generator two to three times more
    per request at this concurrency (its pool is scanned on every request), and a client built
    inside the timed part spends ~25 ms on its TLS context first: both would bound the figures
    by the client. The TLS context is made once and shared, though the URL is plain HTTP.
    """
    tls = ssl.create_default_context()
    # uvicorn closes a connection idle for 5 s; expire first so a request never races the close.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=2.0)
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout_s, verify=tls))
            for _ in range(count)]
