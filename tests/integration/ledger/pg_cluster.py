"""A throwaway PostgreSQL cluster in a temporary directory, for tests that crash the server.

Crash tests must not stop the shared server other people's tests run against, so they get their
own cluster: ``initdb`` into a temp dir, ``pg_ctl start`` on a free port with its socket in that
dir, and crashes that hit only this cluster's processes (``pg_ctl stop -m immediate``, or SIGKILL
to every process of the cluster). Needs the server binaries (``/usr/lib/postgresql/<v>/bin`` or
``PG_BINDIR``); the server refuses to run as root, so under root it runs as the ``postgres`` user
through ``runuser``. ``find_binaries`` returns None when any of that is missing; callers skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates = [os.environ.get("PG_BINDIR", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def _run_as() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return ""  # root without a postgres user: cannot run the server
    return "postgres" if shutil.which("runuser") else ""


def usable() -> str | None:
    """None when a throwaway cluster can be started here, else the reason it cannot."""
    if find_binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if _run_as() == "":
        return "running as root without a 'postgres' user and runuser to start the server"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    user: str | None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        """Start (after a crash: recover from the WAL) and wait until it accepts connections."""
        # dynamic shared memory in files under the data directory: a killed server's segments
        # then go away with the temp dir instead of piling up in /dev/shm
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB "
                   f"-c max_connections=30 -c dynamic_shared_memory_type=mmap "
                   f"-c fsync=on -c synchronous_commit=on -c full_page_writes=on")
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "90",
                           "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}\n{self.log_tail()}")

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: every server process quits at once, no checkpoint; the
        next start runs crash recovery."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def kill_all(self) -> None:
        """SIGKILL the postmaster and every child process of the cluster at once."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for p in [pid, *map(int, children)]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pids = [pid, *map(int, children)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.02)
        # The dead postmaster leaves postmaster.pid behind, as after a power cut. The next
        # postmaster refuses to start while that pid exists, and a killed process stays a zombie
        # until init reaps it; give init a moment, then remove the lock file of a dead server.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _exists(pid):
            time.sleep(0.02)
        if _exists(pid) and not _alive(pid):
            (self.data / "postmaster.pid").unlink(missing_ok=True)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def recoveries(self) -> int:
        """How many times the server log says it recovered from a crash."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return text.count("automatic recovery in progress")

    def destroy(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None and _alive(pid):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _exists(pid: int) -> bool:
    """The pid is taken, by a live process or a zombie not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _scratch_dir() -> str | None:
    """Where the cluster lives: ``PG_CRASH_DIR``, else /dev/shm when usable, else the temp dir.

    The crashes here kill server processes, not the machine: what they test is WAL replay, which
    does not depend on the disk. On tmpfs the start-up fsync of the data directory that every
    crash recovery begins with is free instead of seconds on a busy disk.
    """
    configured = os.environ.get("PG_CRASH_DIR")
    if configured:
        return configured
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def create() -> Cluster:
    """initdb a new cluster in a temp dir and start it. Caller must ``destroy()`` it."""
    bindir = find_binaries()
    user = _run_as()
    if bindir is None or user == "":
        raise RuntimeError(usable() or "cannot start a PostgreSQL cluster")
    root = Path(tempfile.mkdtemp(prefix="fc_pgcrash_", dir=_scratch_dir()))
    cluster = Cluster(bindir, root, _free_port(), user)
    try:
        if user:
            info = pwd.getpwnam(user)
            os.chown(root, info.pw_uid, info.pw_gid)
        os.chmod(root, 0o700)
        # --no-sync only speeds up initdb itself; the running server keeps fsync on
        result = cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync",
                              "-E", "UTF8", "--locale=C", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster
