"""Benchmark: the live webcam widget end to end in a real browser (goal ≥ 15 frames/s and ≤ 100 ms from a frame
copied from the preview to its bars painted with the kernel backend, ≥ 30 frames/s with the browser backend), and
the kernel's share of each frame step by step.

Usage: ``.venv/bin/python -m benchmarks.live_webcam [--seconds 30] [--max-fps 20] [--frame-width 320]
[--backends kernel,browser]``

End to end: JupyterLab and headless Chromium (as in ``tests/test_live_emotion_browser.py``) on this machine,
Chromium's fake camera playing a 30 frames/s y4m video of synthetic faces (320×240, expressions held 2 s), a
notebook showing ``LiveEmotion`` with the reference ``model_2`` (the solution notebook's ``build_model_2``,
untrained: speed does not depend on the weights), twice: with jupyter_server's default kernel websocket
(tornado leaves Nagle's algorithm on, and on Linux a small message can then wait for a 40 ms delayed ACK), and
with the kit's as installed, which sets TCP_NODELAY (``widgets/kernel_websocket.py``; ``make bootstrap`` names it
in the environment's server config, and the benchmark stops if it is not installed); the stock run names
jupyter_server's default class in a user config of its own (:func:`server_config`). After a 10 s warm-up the page's
per-frame timings are read for ``--seconds``: frames/s is frames painted over that time, latency the median
and 95th percentile. Then ``backend="browser"`` (face search in a Web Worker, crop and model in the page, no frame
to the kernel; needs ``scripts/vendor_js.sh``): the camera plays the same faces at 60 frames/s and the widget
analyses up to its default of 60, so that a rate above 30 can show; its "page" time is the page's work on a frame
(grab, crop, model), and the face search's own time in the worker is read from the last frame.
The latency is split into the round trip (frame sent → reply received in the page: server, kernel, back) and
the paint (reply → the animation frame that shows it). The kernel steps (decode, Haar face detection at two
sizes, crop, one-face prediction three ways) are timed in this process on the same frames: 5 interleaved rounds,
each the median of 40 calls (10 for ``model.predict``); the best round is kept. Prints a table and writes
``benchmarks/results/live_webcam.json``.
Everything (server, kernel, browser) shares the machine's cores: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reference_model import untrained_model_2
from benchmarks.results_file import write_results

HERE = Path(__file__).resolve().parent

SEQUENCE = [3, 5, 6, 4]  # Happy, Surprise, Neutral, Sad
#: jupyter_server's own class, named in the stock run's config (the kit's install names its own class instead).
DEFAULT_CLASS = "jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection"


def installed_class() -> str:
    """The kernel websocket class that the environment's Jupyter server config names (the last found wins, as in
    jupyter_server: config folders from ``jupyter --paths``, this user's own folder left out), or
    :data:`DEFAULT_CLASS` when none names one. Raises ``ValueError`` naming a file that is not valid JSON."""
    from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

    found = DEFAULT_CLASS
    folders = [f for f in jupyter_config_path() if Path(f) != Path(jupyter_config_dir())]
    for folder in reversed(folders):  # lowest priority first
        path = Path(folder) / "jupyter_server_config.json"
        if path.is_file():
            try:
                config = json.loads(path.read_text() or "{}")
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
            found = config.get("ServerApp", {}).get("kernel_websocket_connection_class", found)
    return found


def server_config(nodelay: bool) -> dict:
    """The user-level Jupyter server config of one run: empty for the kit as installed (the environment's config
    names its class), jupyter_server's default class for the stock run."""
    return {} if nodelay else {"ServerApp": {"kernel_websocket_connection_class": DEFAULT_CLASS}}


CELL = """import keras
from widgets import LiveEmotion
live = LiveEmotion(keras.models.load_model("model_2.keras"), max_fps={max_fps}, frame_width={frame_width},
                   backend="{backend}")
print("backend:", live.backend)
live"""
#: The browser backend's run: a camera fast enough to show a rate above 30, the widget at its default max_fps.
BROWSER_CAMERA_FPS, BROWSER_MAX_FPS = 60, 60.0


def median_ms(call, repeat: int = 200) -> float:
    """Median milliseconds of ``call()`` after one warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def kernel_steps(model, frames: list[np.ndarray]) -> list[dict]:
    """Per-frame kernel work, step by step, on a frame with a face."""
    from widgets.live_emotion import LiveEmotion, crop_for_model, decode_frame, default_detector, fast_predictor

    frame = frames[0]
    detect, full_size = default_detector(), default_detector(downscale=1)
    box = detect(frame)
    x = crop_for_model(frame, box)
    content = {"id": 1, "width": frame.shape[1], "height": frame.shape[0], "t": 0.0}
    buffers = [frame.tobytes()]
    fast = fast_predictor(model)
    widget = LiveEmotion(model, max_fps=1000)
    frame_ids = iter(range(10**9))
    steps = [
        ("decode the grey bytes", lambda: decode_frame(content, buffers)),
        ("Haar face detection on the frame halved (used)", lambda: detect(frame)),
        ("Haar face detection on the whole frame", lambda: full_size(frame)),
        ("crop to 48×48", lambda: crop_for_model(frame, box)),
        ("model.predict, one face", lambda: model.predict(x, verbose=0)),
        ("model.predict_on_batch, one face", lambda: model.predict_on_batch(x)),
        ("folded + tf.function call, one face (used)", lambda: fast(x)),
        (
            "whole frame in the kernel (handle_frame)",
            lambda: widget.handle_frame(dict(content, id=next(frame_ids), t=time.perf_counter() * 1000), buffers),
        ),
    ]
    # rounds interleave the steps, so that a stall of the shared machine spoils one round of one step, not a row
    rounds: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _ in range(5):
        for name, call in steps:
            rounds[name].append(median_ms(call, 10 if "model.predict," in name else 40))
    rows = []
    for name, _ in steps:
        best, median = min(rounds[name]), float(np.median(rounds[name]))
        rows.append(
            {
                "step": f"kernel: {name}",
                "ms": round(best, 3),
                "note": f"{best:.2f} ms (best of 5 rounds' medians; median {median:.2f} ms)",
            }
        )
        print(f"{rows[-1]['step']:<60}{best:>9.2f} ms  (median of rounds {median:.2f} ms)", flush=True)
    return rows


def end_to_end(
    model_path: Path,
    frames: list[np.ndarray],
    seconds: float,
    max_fps: float,
    frame_width: int,
    nodelay: bool = False,
    backend: str = "kernel",
    camera_fps: int = 30,
) -> tuple[dict, dict]:
    """(the row for the table, raw numbers) from the widget in JupyterLab + Chromium with a fake camera playing
    each face 2 s at ``camera_fps``; ``nodelay``: the server uses the kit's kernel websocket (TCP_NODELAY), else
    jupyter_server's default; ``backend``: the widget's ("kernel" or "browser")."""
    import nbformat
    from playwright.sync_api import sync_playwright

    from tests.lab_browser import Lab, launch, open_notebook, run_all_cells, write_y4m

    root = Path(tempfile.mkdtemp(prefix="live-webcam-"))
    video = []
    for face in frames:
        video += [face] * (2 * camera_fps)
    write_y4m(root / "faces.y4m", video, camera_fps)
    (root / "model_2.keras").write_bytes(model_path.read_bytes())
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(CELL.format(max_fps=max_fps, frame_width=frame_width, backend=backend))]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "live.ipynb")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), JUPYTER_PLATFORM_DIRS="1", TF_CPP_MIN_LOG_LEVEL="2")
    (root / "config").mkdir()
    (root / "config" / "jupyter_server_config.json").write_text(json.dumps(server_config(nodelay)))
    # This run's user config must outrank the environment's (in a venv jupyter_core ranks the environment's
    # config first unless JUPYTER_PREFER_ENV_PATH=0), or the stock run would get the kit's class too.
    env.update(JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_PREFER_ENV_PATH="0")
    lab = Lab(root, env, root / "jupyterlab.log")
    try:
        with sync_playwright() as p:
            browser = launch(
                p,
                [
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={root / 'faces.y4m'}",
                ],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            open_notebook(page, lab, "live.ipynb")
            run_all_cells(page, timeout_s=180)
            page.wait_for_function(
                "() => (document.querySelector('.xl-live').dataset.label || '') !== ''", timeout=60_000
            )
            page.wait_for_timeout(10_000)  # warm-up: the first compiled calls, the browser settling
            start = page.evaluate("() => performance.now()")
            load_before = os.getloadavg()[0]
            page.wait_for_timeout(seconds * 1000)
            end = page.evaluate("() => performance.now()")
            load = max(load_before, os.getloadavg()[0])
            log = page.evaluate("() => document.querySelector('.xl-live').xlTimings")
            labels = page.evaluate("() => document.querySelector('.xl-live').dataset.label")
            search_ms = page.evaluate(
                "() => { const a = document.querySelector('.xl-live').xlLastAnalysis; "
                "return a && a.searched ? a.searched.ms : null; }"
            )
            shown = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
            browser.close()
    finally:
        lab.stop()
    timed = np.array([row for row in log if start <= row[1] <= end])
    if len(timed) < 2:
        raise RuntimeError(
            f"only {len(timed)} frames were painted in {seconds} s (last label {labels!r}); see "
            f"{root / 'jupyterlab.log'}"
        )
    if f"backend: {backend}" not in shown:
        raise RuntimeError(f"expected the widget to run with backend {backend!r}; the cell shows {shown[-300:]!r}")
    latency = timed[:, 1] - timed[:, 0]
    fps = len(timed) / ((end - start) / 1000)
    raw = {
        "fps": round(fps, 2),
        "latency_median_ms": round(float(np.median(latency)), 1),
        "latency_p95_ms": round(float(np.percentile(latency, 95)), 1),
        "kernel_median_ms": round(float(np.median(timed[:, 2])), 1),
        "round_trip_median_ms": round(float(np.median(timed[:, 3] - timed[:, 0])), 1),
        "paint_median_ms": round(float(np.median(timed[:, 1] - timed[:, 3])), 1),
        "frames": int(len(timed)),
        "load_average_1min": round(load, 2),
    }
    if backend == "browser":
        return _browser_row(raw, frame_width, camera_fps, max_fps, seconds, search_ms)
    server = (
        "the kit's kernel websocket, TCP_NODELAY (as installed)"
        if nodelay
        else "jupyter_server's default kernel websocket (Nagle on)"
    )
    row = _frames_row(
        f"end to end, {server}: camera frame → bars painted ({frame_width} px grey frames, max_fps {max_fps:g})",
        raw["fps"],
        f"latency median {raw['latency_median_ms']:.0f} ms (round trip {raw['round_trip_median_ms']:.0f} "
        f"ms, of which kernel {raw['kernel_median_ms']:.0f} ms; paint {raw['paint_median_ms']:.0f} ms), "
        f"p95 {raw['latency_p95_ms']:.0f} ms; {raw['frames']} frames in {seconds:g} s",
    )
    return row, raw


def _frames_row(step: str, fps: float, note: str) -> dict:
    """One end-to-end row of the table (frames/s and a note), printed as it is made."""
    print(f"{step:<60}{fps:>9.1f} frames/s  {note}", flush=True)
    return {"step": step, "per_second": fps, "unit": "frames/s", "note": note}


def _browser_row(
    raw: dict, frame_width: int, camera_fps: int, max_fps: float, seconds: float, search_ms: float | None
) -> tuple[dict, dict]:
    """The browser backend's row: its "kernel" and "round trip" columns are the page's own work on a frame."""
    page_ms = raw["kernel_median_ms"]  # the page's work and its "reply" are one step here: no round trip
    raw = {key: value for key, value in raw.items() if key not in ("kernel_median_ms", "round_trip_median_ms")}
    raw.update(page_median_ms=page_ms, worker_search_ms=None if search_ms is None else round(search_ms, 1))
    search = "" if search_ms is None else f"; a face search {search_ms:.0f} ms in the worker"
    row = _frames_row(
        f"end to end, backend='browser' (in the page): camera frame → bars painted ({frame_width} px grey "
        f"frames, {camera_fps} frames/s camera, max_fps {max_fps:g})",
        raw["fps"],
        f"latency median {raw['latency_median_ms']:.1f} ms (the page's work {raw['page_median_ms']:.1f} ms, "
        f"paint {raw['paint_median_ms']:.1f} ms), p95 {raw['latency_p95_ms']:.1f} ms{search}; {raw['frames']} "
        f"frames in {seconds:g} s",
    )
    return row, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="seconds of timed frames (default 30)")
    parser.add_argument("--max-fps", type=float, default=20, help="the widget's max_fps (default 20, its default)")
    parser.add_argument("--frame-width", type=int, default=320, help="the widget's frame_width (default 320)")
    parser.add_argument("--note", default="", help="a sentence about the machine's state for the results file")
    parser.add_argument(
        "--backends", default="kernel,browser", help="the widget backends run end to end (default kernel,browser)"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"kernel", "browser"}:
        parser.error(f"--backends takes kernel and/or browser, comma-separated; got {args.backends!r}")
    from widgets.kernel_websocket import CLASS_NAME

    if installed_class() != CLASS_NAME:
        parser.error(
            f"this environment's Jupyter server does not use {CLASS_NAME} (found {installed_class()}); "
            f"install it with: {sys.executable} -m widgets.kernel_websocket"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from tests.lab_browser import browser_missing, synthetic_face_frames
    from widgets.live_emotion import missing_vendor_files

    model = untrained_model_2()
    frames = synthetic_face_frames(SEQUENCE)
    rows = kernel_steps(model, frames)
    raw = {}
    missing = browser_missing()
    if missing:
        print(f"end to end skipped: {missing}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model_2.keras"
            model.save(path)
            if "kernel" in backends:
                for nodelay in (False, True):
                    row, raw["nodelay" if nodelay else "stock"] = end_to_end(
                        path, frames, args.seconds, args.max_fps, args.frame_width, nodelay
                    )
                    rows.insert(int(nodelay), row)
            missing_libraries = missing_vendor_files() if "browser" in backends else []
            if missing_libraries:
                print(f"browser backend skipped: {', '.join(missing_libraries)} missing (scripts/vendor_js.sh)")
            elif "browser" in backends:
                row, raw["browser"] = end_to_end(
                    path, frames, args.seconds, BROWSER_MAX_FPS, args.frame_width, True, "browser", BROWSER_CAMERA_FPS
                )
                rows.insert(len(raw) - 1, row)  # after the kernel backend's end-to-end rows
    note = args.note
    load = max((r["load_average_1min"] for r in raw.values()), default=0.0)
    if not note and load > (os.cpu_count() or 1) / 2:
        note = (
            f"provisional: other work shared the machine during the run (1-minute load average up to "
            f"{load:.1f} on {os.cpu_count()} cores); rerun on an idle machine"
        )
    write_results(
        "live_webcam",
        keras=keras.__version__,
        model="model_2 (untrained build_model_2)",
        parameters=int(model.count_params()),
        end_to_end=raw,
        results=rows,
        **({"note": note} if note else {}),
    )
    print(json.dumps(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
