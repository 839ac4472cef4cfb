"""Benchmark: the REST service (``python -m course serve``) under load on 127.0.0.1: requests/s and latency
(p50, p95, p99) of one face per request (goal ≥ 200 requests/s with p95 ≤ 20 ms on 2 cores) and of a photo,
with the service's choices (inference batching, batch norms folded, a compiled forward pass, TensorFlow's
threads) on and off.

Usage: ``.venv/bin/python -m benchmarks.serve_load [--clients 4] [--rate 200] [--rounds 3] [--seconds 3]
[--model M.keras] [--only default]``

Each configuration is a real server, started here as its own process (:func:`course.serve.serve`, uvicorn on a
free loopback port); all start first, then every row runs once per round, rows interleaved, so that a stall of
the machine costs one run of one row rather than all of a row's runs; a row pools its rounds. Two load
generators, both httpx, each run ``--warm-up`` seconds (not counted) and then ``--seconds``:

* closed loop: ``--clients`` connections, each sending its next request when the last is answered: the most the
  server answers;
* open loop: requests due at a fixed ``--rate`` a second, sent whether or not earlier ones were answered (as
  independent users would), by up to 16 connections; a latency counts from the moment its request was due, so a
  server that falls behind shows it. This row is the goal's test: 200 requests/s offered, answered with p95 ≤ 20
  ms.

The single-face request is one 48 × 48 face as JSON ``{"faces": [face]}`` (and, default configuration only, as
2,304 raw bytes); the photo is scikit-image's astronaut (512 × 512 JPEG, one face), whose cost is mostly the kit's
face detector. ``model.predict`` (not compiled) is measured with one client for at most 1 s a round. The model is
the reference ``model_2`` (the solution notebook's ``build_model_2``, untrained: speed does not depend on the
weights) unless ``--model`` names a file. The server, the load generator and whatever else runs share the
machine's cores: each row notes the CPU the server used (cores, and milliseconds a request), the load
generator's cores and the 1-minute load average, and the numbers are those of this machine at that moment.
``--only`` measures some configurations and keeps the others' rows in the results file. Prints a table and
writes ``benchmarks/results/serve_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reference_model import saved_model_2
from benchmarks.results_file import RESULTS, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Server configurations: key → (what it is, :func:`course.serve.serve` options). The first is the service's
#: default, measured on every request kind; the others on one face only.
CONFIGURATIONS = {
    "default": ("batching, folded, compiled, TensorFlow on 1 thread (the default)", {}),
    "threadpool": ("threadpool, no batching", {"batching": False}),
    "all-cores": ("TensorFlow on every core", {"inference_threads": None}),
    "unfolded": ("batch norms not folded", {"fold": False}),
    "predict": ("model.predict, not compiled", {"compiled": False}),
}
DEFAULT = next(iter(CONFIGURATIONS))
#: Seconds an open-loop run goes on sending after its last request was due (a server far behind is left).
GRACE_S = 5.0
FACE_JSON, FACE_BYTES, PHOTO = "one face, JSON", "one face, bytes", "astronaut photo (512x512 JPEG)"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``course.serve.serve(model, port=…, **options)`` in a child process on a free loopback port."""

    def __init__(self, model: Path, options: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        code = (
            "import json, sys; from course.serve import serve; "
            "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), **json.loads(sys.argv[3]))"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(model), str(self.port), json.dumps(options)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 120) -> dict:
        """The server's ``/health`` once it answers. Raises ``RuntimeError`` (with its log) if it exits or does
        not answer within ``timeout`` seconds."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}):\n{self.log.read().decode()[-3000:]}"
                )
            try:
                return httpx.get(f"{self.url}/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"the server did not answer on {self.url} within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


async def _run_connections(work, connections: int, begin: float) -> float:
    """Run ``work(http)`` on ``connections`` connections of one httpx client at once, until all end; returns the
    load generator's own CPU seconds from ``begin`` (``time.perf_counter`` time: the end of the warm-up) on."""
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        tasks = [asyncio.create_task(work(http)) for _ in range(connections)]
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        cpu = time.process_time()
        await asyncio.gather(*tasks)
        return time.process_time() - cpu


async def closed_loop(url: str, request: dict, clients: int, warm_up: float, seconds: float) -> dict:
    """``clients`` connections each sending ``request`` (httpx ``post`` arguments) again as soon as it is
    answered; latencies of the requests sent after ``warm_up`` s and answered within ``seconds`` more.

    Returns ``{"answered", "errors", "latencies_ms", "seconds", "client_cpu_s"}``; ``errors`` counts non-200
    answers and failed requests.
    """
    import httpx

    start = time.perf_counter()
    begin, end = start + warm_up, start + warm_up + seconds
    latencies, errors = [], 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while (sent := time.perf_counter()) < end:
            ok = await send(http, url, request)
            done = time.perf_counter()
            if sent >= begin and done <= end:
                if ok:
                    latencies.append((done - sent) * 1000)
                else:
                    errors += 1

    cpu = await _run_connections(client, clients, begin)
    return {
        "answered": len(latencies),
        "errors": errors,
        "latencies_ms": latencies,
        "seconds": seconds,
        "client_cpu_s": cpu,
    }


async def open_loop(url: str, request: dict, rate: float, warm_up: float, seconds: float, senders: int = 16) -> dict:
    """Requests due at a fixed ``rate`` a second, whether or not earlier ones have been answered (as independent
    users would), for ``warm_up`` s not counted and then ``seconds``; each latency counts from the moment its
    request was due, so a server (or load generator) that falls behind shows it. ``senders`` connections take
    the requests in turn (at most that many in flight; one that is late waits for a free connection, and its
    wait counts). Returns what :func:`closed_loop` does; ``answered`` counts the requests due in the measured
    time that were answered, ``errors`` the others (failed, or not sent :data:`GRACE_S` after the last was due).
    """
    import httpx

    count = int(round((warm_up + seconds) * rate))
    latencies, counted = [], 0
    start = time.perf_counter() + 0.05
    begin, give_up = start + warm_up, start + warm_up + seconds + GRACE_S
    following = iter(range(count))

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal counted
        for i in following:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() > give_up:  # bounded: a server far behind is not waited for
                counted += due >= begin
                continue
            ok = await send(http, url, request)
            if due >= begin:
                counted += 1
                if ok:
                    latencies.append((time.perf_counter() - due) * 1000)

    cpu = await _run_connections(sender, senders, begin)
    return {
        "answered": len(latencies),
        "errors": counted - len(latencies),
        "latencies_ms": latencies,
        "seconds": seconds,
        "client_cpu_s": cpu,
    }


async def send(http, url: str, request: dict) -> bool:
    """POST ``request`` to ``url``; whether it was answered with 200."""
    import httpx

    try:
        return (await http.post(url, **request)).status_code == 200
    except httpx.HTTPError:
        return False


def row(configuration: str, step: str, runs: list[dict], server_cpu_s: float) -> dict:
    """A result row from the runs of every round (:func:`closed_loop` or :func:`open_loop`), pooled: requests
    answered over the measured seconds, latency percentiles over all requests, CPU cores used; the note adds the
    best round's rate."""
    seconds = sum(r["seconds"] for r in runs)
    answered, errors = sum(r["answered"] for r in runs), sum(r["errors"] for r in runs)
    latencies = [x for r in runs for x in r["latencies_ms"]]
    lat = np.asarray(latencies) if latencies else np.full(1, np.nan)
    p50, p95, p99 = (float(np.percentile(lat, q)) for q in (50, 95, 99))
    rate = answered / seconds
    best = max(r["answered"] / r["seconds"] for r in runs)
    server, client = server_cpu_s / seconds, sum(r["client_cpu_s"] for r in runs) / seconds
    load = float(np.mean([r.get("load_average", os.getloadavg()[0]) for r in runs]))
    return {
        "configuration": configuration,
        "step": step,
        "per_second": round(rate, 1) if rate < 10 else round(rate),
        "unit": "requests/s",
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
        "requests": answered,
        "errors": errors,
        "rounds": len(runs),
        "best_round_per_second": round(best, 1),
        "server_cpu_cores": round(server, 2),
        "server_cpu_ms_per_request": round(server_cpu_s * 1000 / answered, 2) if answered else None,
        "client_cpu_cores": round(client, 2),
        "load_average_1min": round(load, 1),
        "note": f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms; best of {len(runs)} rounds {best:,.1f}/s; "
        f"server {server:.2f} cores ({server_cpu_s * 1000 / max(answered, 1):.1f} ms CPU a request), load generator "
        f"{client:.2f}; load average {load:.1f}" + (f"; {errors} not answered" if errors else ""),
    }


def requests_to_send() -> dict:
    """httpx ``post`` arguments by name: one face as JSON, the same face as bytes, the astronaut photo."""
    from PIL import Image
    from skimage import data

    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    photo = io.BytesIO()
    Image.fromarray(data.astronaut()).save(photo, "JPEG", quality=90)
    return {
        # serialised once: the load generator's CPU is the server's on a 2-core machine
        FACE_JSON: {"content": json.dumps({"faces": face.tolist()}), "headers": {"content-type": "application/json"}},
        FACE_BYTES: {"content": face.tobytes(), "headers": {"content-type": "application/octet-stream"}},
        PHOTO: {"files": {"file": ("astronaut.jpg", photo.getvalue(), "image/jpeg")}},
    }


def plan(configurations: list[str], args) -> list[tuple[str, str, str, float]]:
    """The rows to measure: ``(configuration, request kind, "closed" or "open", clients or rate)``."""
    rows = []
    for configuration in configurations:
        if configuration == "predict":  # a hundred times slower: one client
            rows.append((configuration, FACE_JSON, "closed", 1))
            continue
        rows.append((configuration, FACE_JSON, "closed", args.clients))
        if configuration in (DEFAULT, "threadpool"):
            rows.append((configuration, FACE_JSON, "open", args.rate))
        if configuration == DEFAULT:
            rows += [
                (configuration, FACE_BYTES, "closed", args.clients),
                (configuration, PHOTO, "closed", args.photo_clients),
            ]
    return rows


def measure(configurations: list[str], model: Path, args) -> tuple[list[dict], dict]:
    """Start one server per configuration, then run every row of :func:`plan` once per round, interleaved (a
    stall of the machine then costs one run of one row, not all of a row's runs); ``(rows, the default server's
    /health)``."""
    requests = requests_to_send()
    servers = {c: Server(model, CONFIGURATIONS[c][1]) for c in configurations}
    try:
        health = {c: server.wait() for c, server in servers.items()}
        rows = plan(configurations, args)
        runs = {spec: [] for spec in rows}
        cpu = dict.fromkeys(rows, 0.0)
        for _ in range(args.rounds):
            for spec in rows:
                configuration, kind, loop, load = spec
                server = servers[configuration]
                url = server.url + ("/predict/photo" if kind == PHOTO else "/predict/faces")
                seconds = min(args.seconds, 1.0) if configuration == "predict" else args.seconds
                before = server.cpu_seconds()
                generator = closed_loop if loop == "closed" else open_loop
                run = asyncio.run(generator(url, requests[kind], load, args.warm_up, seconds))
                # the server's CPU over warm-up and measurement, scaled to the measured part
                cpu[spec] += (server.cpu_seconds() - before) * run["seconds"] / (run["seconds"] + args.warm_up)
                run["load_average"] = os.getloadavg()[0]  # the machine's, over the last minute
                runs[spec].append(run)
    finally:
        for server in servers.values():
            server.stop()
    results = []
    for spec in rows:
        configuration, kind, loop, load = spec
        step = f"{kind}, {load} client{'s' * (load != 1)}" if loop == "closed" else f"{kind}, {load:g}/s offered"
        results.append(row(configuration, f"{step}: {CONFIGURATIONS[configuration][0]}", runs[spec], cpu[spec]))
        r = results[-1]
        print(
            f"{r['step']:<100}{r['per_second']:>8,} req/s  p50 {r['p50_ms']:>7.1f}  p95 {r['p95_ms']:>7.1f}  "
            f"p99 {r['p99_ms']:>7.1f} ms  (server {r['server_cpu_cores']:.2f} cores, "
            f"{r['server_cpu_ms_per_request'] or 0:.1f} ms CPU a request, load generator "
            f"{r['client_cpu_cores']:.2f}, load average {r['load_average_1min']}"
            + (f", {r['errors']} not answered" if r["errors"] else "")
            + ")",
            flush=True,
        )
    return results, health.get(DEFAULT) or next(iter(health.values()), {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections for one face (default 4)")
    parser.add_argument("--photo-clients", type=int, default=2, help="concurrent connections for photos (default 2)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the open-loop row (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every row, interleaved (default 3)")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured seconds per row and round (default 3; model.predict 1)"
    )
    parser.add_argument("--warm-up", type=float, default=0.5, help="seconds of load before each run (default 0.5)")
    parser.add_argument("--model", help="a saved .keras model to serve instead of an untrained reference model_2")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(CONFIGURATIONS),
        help="measure only this configuration (repeatable): "
        + ", ".join(f"{k}: {v[0]}" for k, v in CONFIGURATIONS.items())
        + "; the results file keeps the other configurations' rows",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else saved_model_2(Path(tmp))
        rows, health = measure(args.only or list(CONFIGURATIONS), model, args)
    default = next((r for r in rows if r["step"].startswith(f"{FACE_JSON}, {args.rate:g}/s")), None)
    if default and default["configuration"] == DEFAULT:
        met = default["per_second"] >= 200 and default["p95_ms"] <= 20
        print(
            f"\ngoal ≥ 200 requests/s with p95 ≤ 20 ms (one face, JSON, {args.rate:g}/s offered): "
            f"{'met' if met else 'NOT met'} ({default['per_second']} requests/s answered, p95 {default['p95_ms']} ms)"
        )
    out = RESULTS / "serve_load.json"
    if args.only and out.is_file():
        previous = json.loads(out.read_text()).get("results", [])
        kept = [r for r in previous if r.get("configuration") in CONFIGURATIONS and r["configuration"] not in args.only]
        rows = sorted(kept + rows, key=lambda r: list(CONFIGURATIONS).index(r.get("configuration", DEFAULT)))
    write_results(
        "serve_load",
        keras=keras.__version__,
        model=health.get("model"),
        model_file=health.get("file")
        if args.model
        else "reference model_2, untrained (speed does not depend on weights)",
        parameters=health.get("parameters"),
        clients=args.clients,
        photo_clients=args.photo_clients,
        rate=args.rate,
        rounds=args.rounds,
        seconds=args.seconds,
        results=rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
