"""Drive a real JupyterLab in a real Chromium (playwright): start the server, open notebooks, run them, read widgets.

Used by ``tests/test_browser.py``. Chromium is Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it; playwright's
own browser download needs a network we do not have); override with ``EXPRESSION_LAB_CHROMIUM``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from course.notebook_cells import grade_id

CHROMIUM = os.environ.get("EXPRESSION_LAB_CHROMIUM", "/usr/bin/chromium")
#: headless Chromium as the kit's CI runs it; WebGL comes from SwiftShader (software), as on a machine without a GPU
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
#: a fake webcam (a test pattern) and automatic "Allow" on the camera prompt
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (``None`` when they can)."""
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright)"
    return None


def browser_test_marks() -> list:
    """The marks of a browser test module: slow, browser, and a skip where Chromium or playwright is missing.

    Raises:
        RuntimeError: they are missing although ``EXPRESSION_LAB_REQUIRE_BROWSER=1`` (CI) asks for the tests.
    """
    import pytest

    missing = browser_missing()
    if missing and os.environ.get("EXPRESSION_LAB_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"browser tests required (EXPRESSION_LAB_REQUIRE_BROWSER=1) but {missing}")
    return [pytest.mark.slow, pytest.mark.browser, pytest.mark.skipif(bool(missing), reason=str(missing))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterApp:
    """A Jupyter application (``jupyter lab`` or ``jupyter server``) on 127.0.0.1 with a random port and token,
    serving ``root``; started and waited for (``/api/status`` answers) here, stopped by :meth:`stop`."""

    def __init__(self, app: str, root: Path, env: dict[str, str], log: Path, extra_args=(), wait_s: float = 120):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "jupyter"),
                app,
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.port_retries=0",
                "--ServerApp.allow_root=True",
                *extra_args,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited with {self.process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter {app} did not answer on port {self.port} within {wait_s:.0f} s; see {log}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Lab(JupyterApp):
    """A JupyterLab server on 127.0.0.1 with a random port and token, serving ``root``."""

    def __init__(self, root: Path, env: dict[str, str], log: Path):
        # A fresh user profile: no saved workspace, and every cell kept in the page (JupyterLab otherwise leaves
        # off-screen cells unrendered, and the tests read cells anywhere in the notebook). No autosave: the tests
        # save with Ctrl+S, and an autosave still in flight then makes JupyterLab ask "File Changed … Overwrite?".
        settings = log.parent / "lab-user-settings"
        for plugin, values in {
            "notebook-extension/tracker": {"windowingMode": "none"},
            "docmanager-extension/plugin": {"autosave": False},
        }.items():
            file = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(values))
        env = dict(
            env, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(log.parent / "lab-workspaces")
        )
        super().__init__("lab", root, env, log)

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"  # reset: no tabs from earlier tests

    def shutdown_kernels(self) -> None:
        """End every kernel session (each notebook test starts its own; idle TensorFlow kernels hold memory)."""
        with urllib.request.urlopen(f"{self.base}/api/sessions?token={self.token}", timeout=10) as r:
            sessions = json.load(r)
        for session in sessions:
            request = urllib.request.Request(
                f"{self.base}/api/sessions/{session['id']}?token={self.token}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()


def launch(playwright, extra_args: list[str] = ()):
    """A headless Chromium (playwright ``Browser``) from a running ``sync_playwright()`` instance."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra_args))


ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"  #: the notebook tab on screen


def open_notebook(page, lab: Lab, notebook: str, timeout_s: float = 120) -> None:
    """Open ``notebook`` (relative to the lab root) alone and wait until its kernel is idle."""
    page.goto(lab.url(notebook))
    panel = page.locator(ACTIVE).first
    panel.locator(".jp-Notebook").wait_for(timeout=timeout_s * 1000)
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=timeout_s * 1000)
    # the status bar says "<kernel> | Idle" once the kernel has started and connected
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=timeout_s * 1000)


def _click_run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()


def run_all_cells(page, timeout_s: float = 900) -> None:
    """*Run → Run All Cells* from JupyterLab's menu, then wait until every cell has run and the kernel is idle.

    A request made while the kernel is still connecting can be lost; when no cell has started 20 s after the
    click, it is clicked again (twice at most).
    """
    _click_run_all(page)
    start = time.monotonic()
    deadline, retries = start + timeout_s, 2
    time.sleep(1)
    while time.monotonic() < deadline:
        panel = page.locator(ACTIVE).first
        prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        busy = panel.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").count()
        if prompts and not busy and all("*" not in p and p.strip() not in ("", "[ ]:") for p in prompts):
            return
        if retries and time.monotonic() - start > 20 and all(p.strip() in ("", "[ ]:") for p in prompts):
            retries -= 1
            start = time.monotonic()
            _click_run_all(page)
        time.sleep(1)
    raise TimeoutError(f"the notebook was still running after {timeout_s:.0f} s: prompts {prompts}")


def save_notebook(page, path: Path, timeout_s: float = 30) -> dict:
    """Save the open notebook (Ctrl+S) and return it as read back from disk."""
    before = path.stat().st_mtime_ns
    page.locator(ACTIVE).first.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout_s
    while path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not saved within {timeout_s} s")
        time.sleep(0.3)
    time.sleep(0.5)
    return json.loads(path.read_text())


def error_outputs(nb: dict) -> list[str]:
    """``"cell N (grade id): ename: evalue"`` for every error output of a saved notebook."""
    found = []
    for n, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                gid = grade_id(cell) or ""
                found.append(f"cell {n} ({gid}): {out.get('ename')}: {out.get('evalue')}")
    return found


def output_of(page, text_in_source: str):
    """The output area of the first code cell whose source contains ``text_in_source``."""
    cell = (
        page.locator(ACTIVE)
        .first.locator(".jp-CodeCell")
        .filter(has=page.locator(".jp-InputArea", has_text=text_in_source))
        .first
    )
    return cell.locator(".jp-OutputArea")


def plot_signature(locator, index: int = 0) -> str:
    """A digest of what the ``index``-th plotly figure under ``locator`` draws (its traces' data, as JSON)."""
    return (
        locator.locator(".js-plotly-plot")
        .nth(index)
        .evaluate(
            "gd => JSON.stringify(gd.data.map(t => [t.x, t.y, t.z, t.marker && t.marker.color])).slice(0, 200000)"
        )
    )


def wait_for_change(read, before: str, timeout_s: float = 30) -> str:
    """Poll ``read()`` until it differs from ``before``; return the new value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = read()
        if now != before:
            return now
        time.sleep(0.25)
    raise AssertionError(f"nothing changed within {timeout_s} s")


def popups(page) -> list[str]:
    """Texts of JupyterLab dialogs and error/warning notifications on screen (e.g. "Build Recommended")."""
    texts = page.locator(".jp-Dialog").all_inner_texts()
    texts += page.locator(".Toastify__toast--error, .Toastify__toast--warning").all_inner_texts()
    return [t.strip() for t in texts if t.strip()]


def synthetic_face_frames(
    expressions: list[int], width: int = 320, height: int = 240, face_side: int = 160, seed: int = 2
) -> list:
    """One synthetic face (identity, light and background fixed by ``seed``; front view; each emotion's prototype
    Action Units at their typical intensity): the 48×48 render of each FER2013 code in ``expressions``, upscaled
    to ``face_side`` pixels and centred on a mid-grey ``uint8 (height, width)`` frame. With seed 2 the Haar
    cascade finds all seven faces in such frames."""
    import numpy as np
    from PIL import Image

    from data_loaders.synthetic.facs import emotion_au_table
    from data_loaders.synthetic.render import render_faces
    from data_loaders.synthetic.sampling import draw_identities

    rng = np.random.default_rng(seed)
    identity = np.repeat(draw_identities(1, rng), 7, axis=0)
    front = {
        "yaw": np.zeros(7, np.float32),
        "pitch": np.zeros(7, np.float32),
        "roll": np.zeros(7, np.float32),
        "scale": np.ones(7, np.float32),
        "shift": np.zeros((7, 3), np.float32),
    }
    # all seven rendered in one call, so that a face looks the same whatever the sequence asked for
    faces = render_faces(identity, emotion_au_table().astype(np.float32), rng, 48, front)[list(expressions)]
    frames = []
    for face in faces:
        frame = np.full((height, width), 128, np.uint8)
        top, left = (height - face_side) // 2, (width - face_side) // 2
        frame[top : top + face_side, left : left + face_side] = np.asarray(
            Image.fromarray(face).resize((face_side, face_side), Image.Resampling.BICUBIC)
        )
        frames.append(frame)
    return frames


def write_y4m(path: Path, frames, fps: int = 30) -> Path:
    """Write grey ``uint8 (H, W)`` frames as a YUV4MPEG2 video (4:2:0, grey chroma), the format Chromium's
    ``--use-file-for-fake-video-capture`` plays as a camera (in a loop). ``H`` and ``W`` must be even."""
    import numpy as np

    height, width = frames[0].shape
    if height % 2 or width % 2:
        raise ValueError(f"y4m 4:2:0 frames need an even size, got {width}×{height}")
    chroma = np.full((height // 2) * (width // 2) * 2, 128, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            if frame.shape != (height, width):
                raise ValueError(f"every frame must be {width}×{height}, got {frame.shape[1]}×{frame.shape[0]}")
            f.write(b"FRAME\n")
            f.write(np.ascontiguousarray(frame, np.uint8).tobytes())
            f.write(chroma)
    return path
