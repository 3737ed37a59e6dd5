"""Bounded load test of the job server on 127.0.0.1: N clients at once, nothing may be lost.

``python -m backend.server.loadtest --jobs 20 --optical crop.tif`` starts a server (CPU: one job at
a time) in a temporary folder, starts ``--jobs`` real ``--remote`` clients at once (tiny ``embed``
runs, or ``version`` without ``--optical``), and prints jobs/s and p50/p95 latency (client start to
its result) as a Markdown table row. Fails if a job is lost: every client must exit 0 with one
result and its output, and the server must count every job done.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Run the load test; exit 0 when no job was lost."""
    parser = argparse.ArgumentParser(prog="python -m backend.server.loadtest", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20, help="clients started at once (at most 50)")
    parser.add_argument("--optical", help="a small raster to embed (default: run `version`)")
    parser.add_argument("--window", default="64")
    args = parser.parse_args(argv)
    jobs = min(max(args.jobs, 1), 50)
    with tempfile.TemporaryDirectory(prefix="terraprobe-load-") as tmp:
        base = Path(tmp)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--work-dir", str(base / "work"), "--gpus", "0"],
                                  cwd=_REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(url)
            command = (["embed", "--optical", args.optical, "--window", args.window] if args.optical
                       else ["version"])
            latencies: dict[int, float] = {}
            failures: list[str] = []

            def client(index: int) -> None:
                out = ["--out", str(base / f"out{index}" / "emb.tif")] if args.optical else []
                started = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "backend", "--remote", url, "--token-file",
                                       str(base / "work" / "token"), *command, *out, "--events", "json"],
                                      cwd=_REPO_ROOT, capture_output=True, text=True, timeout=900)
                results = [line for line in done.stdout.splitlines() if '"event": "result"' in line]
                if done.returncode != 0 or len(results) != 1 or (out and not Path(out[1]).is_file()):
                    failures.append(f"client {index}: exit {done.returncode}: {done.stderr[-300:]}")
                    return
                latencies[index] = time.monotonic() - started

            wall = time.monotonic()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(jobs)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - wall
            stats = _get(url, base / "work" / "token", "/stats")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    ordered = sorted(latencies.values())
    lost = jobs - len(ordered)
    if stats["jobs"]["done"] != jobs:
        failures.append(f"server counted {stats['jobs']} for {jobs} jobs")
    row = {"command": " ".join(command[:1]), "jobs": jobs, "lost": lost, "wall_s": round(wall, 2),
           "jobs_per_s": round(len(ordered) / wall, 3),
           "p50_s": round(statistics.median(ordered), 2) if ordered else None,
           "p95_s": round(ordered[max(round(0.95 * len(ordered)) - 1, 0)], 2) if ordered else None,
           "cpus": os.cpu_count()}
    print(json.dumps(row))
    for failure in failures:
        print(failure, file=sys.stderr)
    return 0 if not failures else 1


def _get(url: str, token_file: Path, path: str) -> dict:
    request = urllib.request.Request(url + "/api/v1" + path,
                                     headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start within 60 s")


if __name__ == "__main__":
    sys.exit(main())
