"""``serve``: the remote job server (HTTP, token-protected) that runs the inference commands for clients.

Clients run ``python -m backend --remote URL --token-file F <command> ...``; see docs/remote.md.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
from pathlib import Path

from backend.errors import Cancelled, UserError
from backend.events import Reporter


def count_gpus() -> int:
    """GPUs listed by ``nvidia-smi -L`` (0 without a driver); torch is not imported here."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    try:
        import uvicorn

        from backend.server.app import create_app, describe
        from backend.server.auth import load_or_create_token
        from backend.server.queue import JobQueue
        from backend.server.storage import Storage
    except ImportError as exc:
        raise UserError(f"the server needs starlette and uvicorn ({exc}): pip install -r requirements.txt",
                        kind="environment") from exc
    roots = [Path(root).expanduser() for root in args.data_root]
    for root in roots:
        if not root.is_dir():
            raise UserError(f"--data-root {root} is not a folder")
    if bool(args.ssl_keyfile) != bool(args.ssl_certfile):
        raise UserError("give both --ssl-keyfile and --ssl-certfile, or neither")
    if args.max_upload_mb <= 0 or args.keep_hours <= 0 or args.keep_free_mb < 0:
        raise UserError("--max-upload-mb and --keep-hours must be positive, --keep-free-mb not negative")
    work_dir = Path(args.work_dir).expanduser()
    mb = 1024 * 1024
    storage = Storage(work_dir, roots, int(args.max_upload_mb * mb), keep_free=int(args.keep_free_mb * mb))
    token, token_path, created, exposed = load_or_create_token(storage.work_dir)
    if exposed:
        reporter.warning(f"the token file {token_path} was readable by {exposed}: set to 0600 now, but "
                         "whoever read it can use this server; delete it and restart to issue a new token")
    gpus = count_gpus() if args.gpus is None else max(args.gpus, 0)
    queue = JobQueue(storage, gpus=gpus)
    app = create_app(storage, queue, token, args.keep_hours)
    scheme = "https" if args.ssl_certfile else "http"
    reporter.log(f"token {'created' if created else 'read'}: {token_path} (give this file to clients, "
                 "e.g. --token-file)")
    if args.host not in ("127.0.0.1", "localhost", "::1") and scheme == "http":
        reporter.warning(f"listening on {args.host} without TLS: the token and data travel in clear text; "
                         "use --ssl-certfile/--ssl-keyfile or a reverse proxy (docs/remote.md)")
    reporter.log(f"serving on {scheme}://{args.host}:{args.port} " + str(describe(storage, queue)))
    with contextlib.suppress(Cancelled, KeyboardInterrupt):  # uvicorn re-raises SIGTERM once it has stopped
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                    ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile, timeout_graceful_shutdown=2)
    reporter.log("server stopped (running jobs were cancelled)")
