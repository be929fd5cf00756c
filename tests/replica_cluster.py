"""A real primary + streaming hot standby pair of PostgreSQL clusters in a temporary folder
(for the replica routing tests and bench/scale_replica.py); never the shared cluster.

The primary is initdb'd with trust on its own unix socket (no TCP), the standby is a
pg_basebackup -R of it on the next port, started with hot_standby."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text


def pg_bindir() -> str | None:
    """Newest PostgreSQL bin folder with PostGIS installed (as scripts/lib.sh finds it)."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        version = Path(folder).parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return folder
    return None


@dataclass
class ClusterPair:
    root: Path
    bindir: str
    port: int
    user: str = "geoservice"
    database: str = "geoservice"

    @property
    def socket(self) -> Path:
        return self.root / "run"

    def url(self, standby: bool = False) -> str:
        port = self.port + 1 if standby else self.port
        return f"postgresql+psycopg2://{self.user}@/{self.database}?host={self.socket}&port={port}"

    def _run(self, *args: str, check: bool = True) -> None:
        # PostgreSQL refuses to run as root: as scripts/lib.sh does, run as `postgres` then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, cwd="/", check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        primary = self.root / "primary"
        self.socket.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket, "postgres")
        tool = lambda name: os.path.join(self.bindir, name)  # noqa: E731
        self._run(
            tool("initdb"), "-D", str(primary), "-U", self.user, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        settings = (
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.socket}'\n"
            f"port = {self.port}\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            "fsync = off\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 40\n"
        )
        self._run("sh", "-c", f"cat >> {primary}/postgresql.conf <<'EOF'\n{settings}EOF")
        self._run(tool("pg_ctl"), "-D", str(primary), "-l", str(self.root / "primary.log"),
                  "-w", "start")  # fmt: skip
        self._run(tool("createdb"), "-h", str(self.socket), "-p", str(self.port),
                  "-U", self.user, self.database)  # fmt: skip
        with create_engine(self.url()).begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))

    def start_standby(self) -> None:
        standby = self.root / "standby"
        tool = lambda name: os.path.join(self.bindir, name)  # noqa: E731
        self._run(
            tool("pg_basebackup"), "-h", str(self.socket), "-p", str(self.port),
            "-U", self.user, "-D", str(standby), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self._run("sh", "-c", f"echo 'port = {self.port + 1}' >> {standby}/postgresql.conf")
        self._run(tool("pg_ctl"), "-D", str(standby), "-l", str(self.root / "standby.log"),
                  "-w", "start")  # fmt: skip

    def stop(self, which: str = "both") -> None:
        tool = os.path.join(self.bindir, "pg_ctl")
        names = ("standby", "primary") if which == "both" else (which,)
        for name in names:
            folder = self.root / name
            if (folder / "postmaster.pid").exists():
                self._run(tool, "-D", str(folder), "-m", "immediate", "-w", "stop", check=False)

    def wait_replayed(self, timeout_s: float = 20.0) -> None:
        """Until the standby has replayed everything the primary wrote so far."""
        with create_engine(self.url()).connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
        engine = create_engine(self.url(standby=True))
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    done = conn.execute(
                        text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"), {"t": target}
                    ).scalar()
                if done:
                    return
                time.sleep(0.05)
        finally:
            engine.dispose()
        raise TimeoutError("the standby did not catch up")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def free_port(start: int = 55_400) -> int:
    """A port number whose socket file is not taken in /tmp-like folders (unix sockets only,
    so only our own folder matters; vary by pid to keep parallel runs apart)."""
    return start + (os.getpid() % 200) * 2
