"""Starting the review server: check the run, open the decisions and the index, bind, print the URL, serve.

:func:`prepare` does everything that can fail before a port is bound (a directory that is not a finished
run, a corrupt decisions file: :class:`ReviewSetupError` with one clear line, and nothing written);
:func:`serve` binds the socket (port 0: a free one), prints one line per reviewer with the URL and its
random token, and runs uvicorn until Ctrl-C or SIGTERM. Every decision is committed before its request
returns, so stopping the server in any way loses nothing.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.pipeline.run_reader import incomplete_reason
from gristmill.review.index import ReviewIndex
from gristmill.review.store import ReviewStoreError, Store, decisions_path

__all__ = ["Prepared", "ReviewSetupError", "is_loopback", "prepare", "serve"]


class ReviewSetupError(RuntimeError):
    """The review cannot start (the message says why); nothing was written."""


@dataclass
class Prepared:
    """A run ready to review: its decisions store and its open index."""

    run_dir: Path
    store: Store
    index: ReviewIndex


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (only this machine can connect)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def prepare(run_dir: str | Path, settings: Mapping[str, Any] | None = None, rebuild: bool = False,
            log: Callable[[str], None] | None = None) -> Prepared:
    """Check ``run_dir`` is a finished pipeline run, open (or create) its decisions, store ``settings``, open the
    index (building it when needed). Raises :class:`ReviewSetupError`."""
    run_dir = Path(run_dir)
    problem = incomplete_reason(run_dir)
    if problem is not None:
        if (run_dir / "config.json").is_file() and not (run_dir / "stats.json").exists():
            problem = f"{run_dir}: a train / eval / select run, not a pipeline run: there are no rows to review"
        raise ReviewSetupError(problem)
    try:
        store = Store(decisions_path(run_dir), create=True)
        if settings:
            store.set_settings(settings)
    except ReviewStoreError as exc:
        raise ReviewSetupError(str(exc)) from None
    except OSError as exc:
        raise ReviewSetupError(f"{run_dir}: cannot write the review's files ({exc})") from None
    index = ReviewIndex(run_dir, store)
    if log is not None and (rebuild or not index.path.is_file()):
        log(f"indexing the queues of {run_dir} …")
    try:
        index.open(rebuild=rebuild)
    except ReviewStoreError as exc:
        raise ReviewSetupError(str(exc)) from None
    return Prepared(run_dir, store, index)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ReviewSetupError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(prepared: Prepared, host: str = "127.0.0.1", port: int = 0, reviewers: list[str] | None = None,
          out: Callable[[str], None] = print) -> None:
    """Serve the review of ``prepared`` on ``host:port`` for ``reviewers`` (one random token each) until stopped."""
    import uvicorn

    from gristmill.review.app import COOKIE, create_app

    names = list(dict.fromkeys(reviewers or ["reviewer"]))
    tokens = {secrets.token_urlsafe(24): name for name in names}
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    origins = {f"http://{shown}:{bound}"}
    hosts: set[str] | None = None
    if is_loopback(host):
        names_ok = {shown, "localhost", "127.0.0.1", "[::1]"}
        origins |= {f"http://{h}:{bound}" for h in names_ok}
        hosts = {f"{h}:{bound}" for h in names_ok}
    app = create_app(prepared.index, tokens, origins, hosts, cookie=f"{COOKIE}_{bound}")
    for token, name in tokens.items():
        out(f"review {prepared.run_dir} at http://{shown}:{bound}/?token={token}  (reviewer {name})")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
