"""llama-cpp-python's OpenAI-compatible server over the packaged SmolLM2, on a free loopback port (test helper)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gristmill.llm.backends import find_smollm2_gguf


@contextmanager
def smollm2_server(log: Path, timeout: float = 180) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server (one thread, 1,024 tokens of context), wait until it answers, yield its ``/v1`` URL and
    process; stop it afterwards. Its output goes to ``log``, quoted when it exits early."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(find_smollm2_gguf()),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                                 "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false"],
                                stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + timeout
        while True:
            assert proc.poll() is None, f"llama_cpp.server exited: {log.read_text()[-2000:]}"
            assert time.time() < deadline, f"llama_cpp.server did not start in {timeout:.0f} s"
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)
