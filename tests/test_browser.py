"""The student notebooks in a real browser: JupyterLab + headless Chromium, driven with playwright.

Each released notebook (filled with the reference answers, as a student who finished would have it) is opened
in JupyterLab on the default (synthetic) data at grading size, run with *Run All Cells*, saved and read back:
no cell may end in an error, the plotly figures must draw (WebGL canvases for the 3D viewer), and moving a
widget control must change what is drawn, which takes a round trip through the kernel. The photo-capture widget
is driven with Chromium's fake camera (a photo must land on disk) and with the camera refused (the upload box
must be offered, and an upload saved). Screenshots of the key widgets go to ``$EXPRESSION_LAB_SCREENSHOTS``
(``docs/screenshots/`` for the README: ``EXPRESSION_LAB_SCREENSHOTS=docs/screenshots make test
PYTEST_ARGS="-m browser"``), else to a temporary folder.

The notebooks are the student bundle's (``python -m course bundle``), run by a kernel of a fresh virtual
environment where only the bundle is installed (``tests/bundle_venv.py``): each run also proves that the bundle
works on its own, and a last cell checks that the kit was imported from the bundle, without instructor modules.

Skipped where Chromium or playwright is missing, unless ``EXPRESSION_LAB_REQUIRE_BROWSER=1`` (``.ci/run``).
"""

from __future__ import annotations

import os

import nbformat
import pytest
from PIL import Image

from bundle_venv import KERNEL, install_bundle
from conftest import REPO, SHARED_CACHE
from course import ASSIGNMENTS
from course.sample_submission import fill_answers
from lab_browser import (
    FAKE_CAMERA_ARGS,
    Lab,
    browser_test_marks,
    error_outputs,
    launch,
    open_notebook,
    output_of,
    plot_signature,
    popups,
    run_all_cells,
    save_notebook,
    wait_for_change,
)

pytestmark = browser_test_marks()

BUNDLE_KERNELSPEC = {"name": KERNEL, "display_name": "student bundle", "language": "python"}
CAPTURE_NB = """from widgets import PhotoCapture
from data_loaders.personal import personal_path
capture = PhotoCapture(personal_path(), countdown=1)  # saves under PERSONAL_PHOTOS_PATH
capture"""


@pytest.fixture(scope="module")
def student_bundle(tmp_path_factory):
    """The student bundle built from this checkout and installed in a fresh venv with a kernel of its own.

    Built with the session's shared cache and the synthetic data, so that it ships the fallback model_2 that the
    session's other notebook runs train there (once: a lock makes a second worker wait) instead of training another.
    """
    from course.bundle import build_bundle

    tmp = tmp_path_factory.mktemp("bundle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))
        for key in ("FER2013_PATH", "IPHONEX_PATH"):
            mp.setenv(key, "synthetic")
        archive = build_bundle(tmp / "expression-lab-student.zip")
    return install_bundle(archive, tmp)


@pytest.fixture(scope="module")
def lab(student_bundle):
    """JupyterLab over the unpacked bundle, its notebooks filled in with the reference answers (as a student who
    finished would have them) and run by the bundle's kernel, plus a capture notebook."""
    root = student_bundle.root
    for assignment, name in ASSIGNMENTS.items():
        path = root / notebook_path(assignment)
        nb = fill_answers(path, REPO / "solutions" / assignment / f"{name}.ipynb")
        nb.cells.append(nbformat.v4.new_code_cell(student_bundle.origin_check()))
        nb.metadata["kernelspec"] = BUNDLE_KERNELSPEC
        nbformat.write(nb, path)
    capture = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CAPTURE_NB)])
    capture.metadata["kernelspec"] = BUNDLE_KERNELSPEC
    nbformat.write(capture, root / "capture.ipynb")
    env = dict(
        student_bundle.env(dict(os.environ)),
        NBGRADER_EXECUTION="autograde",
        FER2013_PATH="synthetic",
        IPHONEX_PATH="synthetic",
        AU_DATA_PATH="synthetic",
        EXPRESSION_LAB_CACHE=str(SHARED_CACHE),
        PERSONAL_PHOTOS_PATH=str(root / "photos"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("MODEL_2_PATH", None)
    server = Lab(root, env, root.parent.parent / "jupyterlab.log")
    yield server
    server.stop()


def notebook_path(assignment: str) -> str:
    """An assignment's notebook relative to the bundle (the lab's root)."""
    return f"assignments/{assignment}/{ASSIGNMENTS[assignment]}.ipynb"


@pytest.fixture(scope="module")
def browser(playwright):
    """Chromium with a fake camera (a test pattern) whose permission prompt is answered "Allow"."""
    b = launch(playwright, FAKE_CAMERA_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()
    lab.shutdown_kernels()


def _run(page, lab: Lab, notebook: str) -> dict:
    open_notebook(page, lab, notebook)
    run_all_cells(page)
    saved = save_notebook(page, lab.root / notebook)
    assert error_outputs(saved) == [], f"{notebook}: cells ended in errors"
    last = saved["cells"][-1]
    assert last.get("execution_count"), f"{notebook}: expected the bundle check (the last cell) run, found {last}"
    return saved


def _assert_webgl(output) -> None:
    canvases = output.locator(".gl-container canvas")
    assert canvases.count() > 0, "the 3D figure drew no canvas"
    assert canvases.first.evaluate(
        "c => !!(c.getContext('webgl') || c.getContext('webgl2') || c.getContext('experimental-webgl'))"
    ), "the 3D figure's canvas has no WebGL context"
    assert "WebGL is not supported" not in output.inner_text()


def test_jupyterlab_opens_without_popups(page, lab, shots):
    page.goto(f"{lab.base}/lab?token={lab.token}")
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    page.wait_for_timeout(5000)  # extension checks and news prompts appear within a few seconds
    assert popups(page) == []
    assert "Build Recommended" not in page.content()
    page.screenshot(path=shots / "jupyterlab.png")


def test_ps1_runs_and_prediction_bars_follow_the_slider(page, lab, shots):
    _run(page, lab, notebook_path("ps1_fer2013_cnn"))
    bars = output_of(page, "PredictionBars(test_set.images")
    assert bars.locator(".js-plotly-plot").count() == 2, "PredictionBars draws the face and the bars"
    bars.scroll_into_view_if_needed()
    before = plot_signature(bars, 1)
    bars.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    wait_for_change(lambda: plot_signature(bars, 1), before)  # the kernel redrew the bars for example 1
    assert popups(page) == []
    bars.screenshot(path=shots / "ps1_prediction_bars.png")
    output_of(page, "plot_confusion_matrix(").screenshot(path=shots / "ps1_confusion_matrix.png")


def test_ps2_runs_with_the_camera_widget(page, lab, shots):
    _run(page, lab, notebook_path("ps2_personal_transfer"))
    capture = output_of(page, "capture = PhotoCapture(personal_path())")
    capture.locator(".xl-capture video").wait_for()
    page.wait_for_function("() => document.querySelector('.xl-capture video').readyState >= 2", timeout=30_000)
    assert "Camera on" in capture.locator(".xl-state").inner_text()
    capture.screenshot(path=shots / "ps2_photo_capture.png")
    bars = output_of(page, "PredictionBars(test_photos.images")
    assert bars.locator(".js-plotly-plot").count() == 4, "before and after: two PredictionBars"
    bars.screenshot(path=shots / "ps2_prediction_bars.png")
    assert popups(page) == []


def test_ps3_runs_and_the_3d_viewer_follows_its_controls(page, lab, shots):
    _run(page, lab, notebook_path("ps3_iphonex_3dcnn"))
    viewer = output_of(page, "viewer = FaceViewer(")
    viewer.scroll_into_view_if_needed()
    _assert_webgl(viewer)
    for control in ("subject", "expression"):
        before = plot_signature(viewer)
        select = viewer.locator(".widget-dropdown", has_text=control).first.locator("select")
        options = select.locator("option").all_inner_texts()
        select.select_option(label=options[-1])
        wait_for_change(lambda: plot_signature(viewer), before)
    # the picture for the README: a happy face coloured by how far each point moved from the subject's neutral
    viewer.locator(".widget-dropdown", has_text="expression").first.locator("select").select_option(label="Happy")
    before = plot_signature(viewer)
    viewer.locator(".widget-toggle-button", has_text="movement from").first.click()
    wait_for_change(lambda: plot_signature(viewer), before)
    viewer.screenshot(path=shots / "ps3_face_viewer.png")
    voxels = output_of(page, "voxelize=voxelize)")
    voxels.scroll_into_view_if_needed()
    before = plot_signature(voxels)
    voxels.locator(".widget-toggle-button", has_text="voxels").first.click()
    wait_for_change(lambda: plot_signature(voxels), before)  # the student's voxelize, run by the kernel
    _assert_webgl(voxels)
    voxels.screenshot(path=shots / "ps3_voxel_view.png")
    assert popups(page) == []


def test_ps4_runs_and_the_au_explorer_follows_its_sliders(page, lab, shots):
    _run(page, lab, notebook_path("ps4_action_units"))
    explorer = output_of(page, "explorer = AUExplorer(")
    explorer.scroll_into_view_if_needed()
    _assert_webgl(explorer)
    plots = explorer.locator(".js-plotly-plot")
    assert plots.count() == 4, "the face, its 48×48 image, emotion bars and AU bars"
    before = [plot_signature(explorer, i) for i in range(4)]
    explorer.locator(".widget-slider", has_text="AU26").locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")  # one step more jaw drop: the kernel deforms, renders and predicts again
    for i in range(4):
        wait_for_change(lambda i=i: plot_signature(explorer, i), before[i])
    before = plot_signature(explorer, 0)
    explorer.locator(".widget-toggle-button", has_text="Surprise").first.click()
    wait_for_change(lambda: plot_signature(explorer, 0), before)
    page.wait_for_timeout(1000)
    explorer.screenshot(path=shots / "ps4_au_explorer.png")
    output_of(page, "px.bar(_f1").screenshot(path=shots / "ps4_per_au_f1.png")
    assert popups(page) == []


def test_capture_with_a_camera_saves_the_photo(page, lab, shots):
    photos = lab.root / "photos"
    already = set(photos.rglob("*.jpg"))
    open_notebook(page, lab, "capture.ipynb")
    run_all_cells(page, timeout_s=120)
    widget = page.locator(".xl-capture").first
    page.wait_for_function("() => document.querySelector('.xl-capture video').readyState >= 2", timeout=30_000)
    page.locator(".widget-dropdown", has_text="expression").locator("select").select_option("surprise")
    page.locator(".widget-toggle-button", has_text="test").first.click()
    widget.locator(".xl-shot").click()
    page.get_by_text("Saved test/surprise/").wait_for(timeout=30_000)
    new = set(photos.rglob("*.jpg")) - already
    assert [p.relative_to(photos).parts[:2] for p in new] == [("test", "surprise")]
    with Image.open(next(iter(new))) as img:
        assert img.format == "JPEG" and min(img.size) >= 120, f"a {img.format} of {img.size}"
    page.locator(".jp-OutputArea").first.screenshot(path=shots / "capture_saved.png")


def test_capture_without_camera_permission_offers_upload(playwright, lab, shots, tmp_path):
    # a browser with a camera but no automatic "Allow": the page's request is refused, as when a student
    # clicks "Block" (headless Chromium dismisses permission prompts)
    refusing = launch(playwright, ["--use-fake-device-for-media-stream"])
    try:
        context = refusing.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        open_notebook(page, lab, "capture.ipynb")
        run_all_cells(page, timeout_s=120)
        page.get_by_text("No camera: denied or unavailable").wait_for(timeout=30_000)
        upload = page.locator(".widget-upload").first
        assert upload.is_visible(), "the upload box is offered when the camera is refused"
        assert page.locator(".xl-shot").is_disabled()
        photo = tmp_path / "me.png"
        Image.new("L", (64, 64), 128).save(photo)
        page.locator(".widget-dropdown", has_text="expression").locator("select").select_option("sad")
        with page.expect_file_chooser() as chooser:  # the widget opens the browser's file dialog on click
            upload.click()
        chooser.value.set_files(str(photo))
        page.get_by_text("Saved train/sad/").wait_for(timeout=30_000)
        assert list((lab.root / "photos" / "train" / "sad").iterdir())
        page.locator(".jp-OutputArea").first.screenshot(path=shots / "capture_upload_fallback.png")
    finally:
        refusing.close()


def test_ps5_runs_and_the_video_timeline_follows_its_scrubber(page, lab, shots):
    _run(page, lab, notebook_path("ps5_faces_in_motion"))
    timeline = output_of(page, 'title=f"model_2 on {clip.name}"')
    timeline.scroll_into_view_if_needed()
    assert timeline.locator(".js-plotly-plot").count() == 3, "the curves, the frame and the bars"
    curves = timeline.locator(".js-plotly-plot").first.locator(".scatterlayer .trace path.js-line")
    assert curves.count() >= 7, f"one probability curve per emotion drawn, found {curves.count()}"
    frame_source = "gd => (gd.data[0].source || '').slice(-300)"
    image_before = timeline.locator(".js-plotly-plot").nth(1).evaluate(frame_source)
    assert image_before, "the frame is drawn"
    bars_before = plot_signature(timeline, 2)
    timeline.locator(".noUi-handle").first.focus()
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    # the kernel decoded another frame and redrew its bars
    wait_for_change(lambda: timeline.locator(".js-plotly-plot").nth(1).evaluate(frame_source), image_before)
    wait_for_change(lambda: plot_signature(timeline, 2), bars_before)
    assert popups(page) == []
    timeline.screenshot(path=shots / "ps5_video_timeline.png")


def test_ps6_runs_and_the_gradcam_view_follows_its_class_and_face_buttons(page, lab, shots):
    _run(page, lab, notebook_path("ps6_explain_compare"))
    view = output_of(page, "view = GradCamView(")
    view.scroll_into_view_if_needed()
    heat, face = view.locator("canvas.xl-gc-heat"), view.locator("canvas.xl-gc-face")
    pixels = "c => c.toDataURL()"
    heat_before, face_before = heat.evaluate(pixels), face.evaluate(pixels)
    assert view.locator(".xl-gc-bar").count() == 7, "one bar per class"
    assert "Grad-CAM" in view.locator("figcaption").nth(1).inner_text(), "the heatmap of the chosen class is drawn"
    chosen = view.locator(".xl-gc-bar.xl-gc-chosen").get_attribute("data-cls")
    other = next(name for name in ("Happy", "Surprise", "Angry") if name != chosen)
    view.locator(f'.xl-gc-bar[data-cls="{other}"]').click()  # repainted in the browser: no kernel round trip
    wait_for_change(lambda: heat.evaluate(pixels), heat_before)
    assert view.locator(".xl-gc-bar.xl-gc-chosen").get_attribute("data-cls") == other
    assert face.evaluate(pixels) == face_before, "a class change keeps the face"
    view.locator(".xl-gc-step", has_text="next").click()  # the kernel explains the next face and sends it
    wait_for_change(lambda: face.evaluate(pixels), face_before)
    assert "face 2 of" in view.inner_text()
    assert view.locator(".xl-gc-status").inner_text() == "", "the student's grad_cam ran without an error"
    view.screenshot(path=shots / "ps6_gradcam_view.png")
    assert popups(page) == []
