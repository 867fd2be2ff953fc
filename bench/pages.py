"""Public pages benchmark: requests per second for the round page and the public ledger, next to a
minimal Flask page served the same way, in one run; prints the ratios (target: at least 40%).

    python bench/pages.py [--duration SECONDS] [--connections N] [--workers N] [--keep]

What it does:

1. Makes a throwaway instance directory with a SQLite database, runs ``fundcircle db upgrade`` and
   ``fundcircle demo`` there (the demo circle ``riverside-commons``).
2. Serves the app with gunicorn (``--workers`` sync workers, default 2) from that instance, and a
   minimal Flask app (one route returning a short HTML page) with the same gunicorn settings.
3. Generates load from separate processes (``wrk`` when it is installed, otherwise a Python load
   generator: several processes, each with a few threads doing plain HTTP/1.1 GETs), measuring
   each target for ``--duration`` seconds after a short warm-up, in the order minimal, round,
   ledger, then the minimal page once more (the machine is shared; the two minimal runs show how
   much the baseline moved), and prints requests per second and each page's ratio to the mean of
   the minimal runs.

Every request is anonymous and carries no validators (the ETag/304 path is measured separately, as
"round page, revalidated"). In the default configuration anonymous visitors share renders (the
page cache, keyed by the data behind the page, and a one-second memo of that data; see
``fundcircle/transparency/caching.py``); ``--render-every-time`` turns both off so every request
loads and renders the page, which is what a signed-in member costs. Non-200 answers are counted
and reported; a run with errors is flagged.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "riverside-commons"

MINIMAL_APP = textwrap.dedent('''
    """The anchor: the smallest Flask page, served the same way as fundcircle."""
    from flask import Flask

    app = Flask(__name__)


    @app.get("/")
    def index():
        return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>minimal</title></head>"
                "<body><h1>Hello</h1><p>A minimal Flask page.</p></body></html>")
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found next to {sys.executable} or on PATH")
    return found


def app_env(instance: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "FUNDCIRCLE_ENV": "demo",
        "FUNDCIRCLE_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'fundcircle.sqlite3'}",
        "SECRET_KEY": "bench-secret-" + "x" * 40,
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    })
    return env


def prepare(instance: Path) -> dict[str, str]:
    env = app_env(instance)
    cli = venv_bin("fundcircle")
    for args in (["db", "upgrade"], ["demo"]):
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"fundcircle {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return env


def serve(target: str, port: int, workers: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [venv_bin("gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
           "--backlog", "2048", target]
    return subprocess.Popen(cmd, env=env, cwd=str(cwd), start_new_session=True)


def wait_ready(port: int, path: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"server on port {port} did not answer 200 for {path}")


def find_paths(instance: Path) -> tuple[str, str]:
    db = sqlite3.connect(instance / "fundcircle.sqlite3")
    try:
        (round_id,) = db.execute("SELECT r.id FROM rounds r JOIN circles c ON c.id = r.circle_id "
                                 "WHERE c.slug = ? AND r.title LIKE 'Spring%'", (SLUG,)).fetchone()
    finally:
        db.close()
    return f"/c/{SLUG}/r/{round_id}", f"/c/{SLUG}/ledger"


# -- load generation -------------------------------------------------------------------------------

def _client_thread(port: int, path: str, headers: dict[str, str], stop_at: float, counts: list[int]) -> None:
    ok = errors = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop_at:
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status in (200, 304):
                ok += 1
            else:
                errors += 1
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    counts[0] += ok
    counts[1] += errors


def _client_process(port: int, path: str, headers: dict[str, str], start_at: float, stop_at: float, threads: int,
                    out: mp.Queue) -> None:  # type: ignore[type-arg]
    while time.monotonic() < start_at:
        time.sleep(0.001)
    counts = [0, 0]
    workers = [threading.Thread(target=_client_thread, args=(port, path, headers, stop_at, counts))
               for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(tuple(counts))


def python_load(port: int, path: str, duration_s: float, connections: int,
                headers: dict[str, str] | None = None) -> tuple[float, int]:
    """(requests per second, non-2xx/3xx count) with ``connections`` concurrent clients spread over
    two processes (so the generator is not one GIL)."""
    processes = 2
    per_process = max(1, connections // processes)
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start_at = time.monotonic() + 0.5
    stop_at = start_at + duration_s
    procs = [mp.Process(target=_client_process, args=(port, path, headers or {}, start_at, stop_at, per_process,
                                                      queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    totals = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    ok = sum(t[0] for t in totals)
    errors = sum(t[1] for t in totals)
    return ok / duration_s, errors


def wrk_load(port: int, path: str, duration_s: float, connections: int,
             headers: dict[str, str] | None = None) -> tuple[float, int]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{int(duration_s)}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    return rate, (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)


def measure(port: int, path: str, duration_s: float, connections: int,
            headers: dict[str, str] | None = None) -> tuple[float, int]:
    load = wrk_load if shutil.which("wrk") else python_load
    load(port, path, min(2.0, duration_s), connections, headers)  # warm-up: imports, caches, connections
    return load(port, path, duration_s, connections, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the instance directory")
    parser.add_argument("--render-every-time", action="store_true",
                        help="serve the app with its page cache and state memo off (every request renders)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fundcircle-bench-pages-"))
    instance = workdir / "instance"
    instance.mkdir()
    (workdir / "minimal_app.py").write_text(MINIMAL_APP)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        env = prepare(instance)
        round_path, ledger_path = find_paths(instance)
        app_port, minimal_port = free_port(), free_port()
        factory = ("fundcircle:create_app({'PUBLIC_PAGE_CACHE_ENTRIES': 0, 'PUBLIC_STATE_TTL_S': 0})"
                   if args.render_every_time else "fundcircle:create_app()")
        servers.append(serve(factory, app_port, args.workers, env, ROOT))
        minimal_env = {**os.environ, "PYTHONPATH": str(workdir)}
        servers.append(serve("minimal_app:app", minimal_port, args.workers, minimal_env, workdir))
        wait_ready(app_port, round_path)
        wait_ready(app_port, ledger_path)
        wait_ready(minimal_port, "/")

        generator = "wrk" if shutil.which("wrk") else "python (2 processes x threads)"
        print(f"gunicorn: {args.workers} sync workers per server; load: {generator}, {args.connections} "
              f"connections, {args.duration:g}s per measurement; SQLite demo data in {instance}; "
              + ("page cache and state memo OFF" if args.render_every_time else "default configuration"))
        conditional = http.client.HTTPConnection("127.0.0.1", app_port)
        conditional.request("GET", round_path)
        etag = conditional.getresponse().getheader("ETag") or ""
        conditional.close()

        runs = [("minimal page", minimal_port, "/", None), ("round page", app_port, round_path, None),
                ("public ledger", app_port, ledger_path, None),
                ("round page, revalidated (304)", app_port, round_path, {"If-None-Match": etag}),
                ("minimal page (again)", minimal_port, "/", None)]
        results: dict[str, tuple[float, int]] = {}
        for name, port, path, headers in runs:
            results[name] = measure(port, path, args.duration, args.connections, headers)
            rate, errors = results[name]
            print(f"  {name:<32} {rate:9.1f} req/s" + (f"   ({errors} errors)" if errors else ""))
        anchor = (results["minimal page"][0] + results["minimal page (again)"][0]) / 2
        print(f"anchor (mean of the two minimal runs): {anchor:.1f} req/s")
        for name in ("round page", "public ledger", "round page, revalidated (304)"):
            ratio = results[name][0] / anchor if anchor else 0.0
            verdict = "meets" if ratio >= 0.40 else "BELOW"
            print(f"  {name:<32} {ratio:6.1%} of the minimal page ({verdict} the 40% target)")
        if any(errors for _rate, errors in results.values()):
            print("WARNING: some requests failed; the figures above count only successful ones")
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
