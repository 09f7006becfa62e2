"""HTTP backend: N concurrent vs sequential requests, against the local llama.cpp server and a fixed-latency stub.

    .venv/bin/python benchmarks/bench_http.py [--requests 16] [--concurrency 4] [--max-tokens 32]

What is measured
----------------
1. ``llama_server``: ``python -m llama_cpp.server`` (llama-cpp-python's OpenAI-compatible
   server) on loopback with the packaged SmolLM2-135M GGUF (``--threads``, default 1). gristmill's
   openai backend sends ``--requests`` chat prompts (from the self-instruct seed tasks,
   greedy, ``--max-tokens``) with ``concurrency: 1`` and then with ``concurrency: N``.
   This server has one model instance and answers one request at a time, so concurrency
   can only hide the HTTP round trips; the ratio shows how close the client gets to the
   server's own speed.
2. ``stub_100ms``: a loopback stub that answers every request after 100 ms (what a
   remote API or a batched vLLM server looks like from the client): here concurrency
   should scale almost linearly, which checks the client's thread pool, connection pool
   and per-request overhead.

Both are timed as wall clock of ``backend.generate`` over all requests, best of
``--repeats``; requests/s and tokens/s are reported, with the concurrent/sequential ratio.
Results: benchmarks/out/bench_http.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_generate import load_prompts  # noqa: E402

from gristmill.llm.backends import create_backend, find_smollm2_gguf  # noqa: E402
from gristmill.llm.types import Decoding  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(OUT / "llama_server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(find_smollm2_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                             "--n_threads", str(threads), "--verbose", "false"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}); see {OUT / 'llama_server.log'}")
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start within 120 s")


def start_stub(latency_s: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency_s)
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok " * 32},
                                            "finish_reason": "length"}],
                               "usage": {"prompt_tokens": 20, "completion_tokens": 32}}).encode()
            # one write: separate header and body writes meet Nagle + delayed ACK (40 ms a request)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            self.wfile.write(head.encode() + data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def measure(url: str, prompts: list[Any], d: Decoding, concurrency: int, repeats: int) -> dict[str, Any]:
    backend = create_backend({"type": "openai", "base_url": url, "concurrency": concurrency, "max_retries": 0})
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = backend.generate(prompts, d)
        seconds = time.perf_counter() - t0
        errors = [c.error for c in out if c.finish_reason == "error"]
        if errors:
            raise RuntimeError(f"{len(errors)} requests failed: {errors[0]}")
        tokens = sum(c.tokens_out for c in out)
        runs.append({"seconds": seconds, "tokens": tokens, "requests_per_s": len(prompts) / seconds,
                     "tokens_per_s": tokens / seconds})
    backend.close()
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "concurrency": concurrency, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="server threads (see bench_generate.py on why 1)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    prompts = load_prompts(args.requests)
    d = Decoding(max_tokens=args.max_tokens)
    result: dict[str, Any] = {"requests": args.requests, "max_tokens": args.max_tokens, "cpus": os.cpu_count()}

    proc, url = start_llama_server(args.threads)
    try:
        measure(url, prompts[:2], d, 1, 1)  # warm-up
        seq = measure(url, prompts, d, 1, args.repeats)
        conc = measure(url, prompts, d, args.concurrency, args.repeats)
    finally:
        proc.terminate()
        proc.wait(30)
    result["llama_server"] = {"sequential": seq, "concurrent": conc,
                              "speedup": seq["seconds"] / conc["seconds"]}

    stub, stub_url = start_stub(0.1)
    try:
        seq = measure(stub_url, prompts, d, 1, args.repeats)
        conc = measure(stub_url, prompts, d, args.concurrency, args.repeats)
    finally:
        stub.shutdown()
    result["stub_100ms"] = {"sequential": seq, "concurrent": conc, "speedup": seq["seconds"] / conc["seconds"]}

    (OUT / "bench_http.json").write_text(json.dumps(result, indent=2))
    print(f"{'target':14s} {'mode':12s} {'req/s':>7s} {'tok/s':>7s} {'seconds':>8s}")
    for target in ("llama_server", "stub_100ms"):
        r = result[target]
        for mode in ("sequential", "concurrent"):
            m = r[mode]
            print(f"{target:14s} {mode + ' x' + str(m['concurrency']):12s} {m['requests_per_s']:7.2f} "
                  f"{m['tokens_per_s']:7.1f} {m['seconds']:8.2f}")
        print(f"{target:14s} concurrent/sequential speedup: {r['speedup']:.2f}x")
    print(f"-> {OUT / 'bench_http.json'}")


if __name__ == "__main__":
    main()
