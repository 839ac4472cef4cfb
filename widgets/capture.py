"""Take the 14 photos of assignment 2 without leaving JupyterLab: webcam preview, countdown, capture, upload.

The camera part is an anywidget: the browser shows a live preview (``camera.js``, the camera start shared with
:mod:`widgets.live_emotion`, joined before ``capture.js`` by :mod:`widgets.frontend`), and a capture sends one
JPEG to the kernel, which saves it atomically as ``<folder>/<train|test>/<emotion>/<n>.jpg`` (the notebook
passes ``personal_path()``: ``data/personal``, git-ignored, unless configured). Thumbnails of the saved photos
have a delete button, and a progress line counts the expressions done ("train: 5/7 expressions, test: 0/7").
When there is no camera, or permission is refused, the widget says so and the upload box (ipywidgets
``FileUpload``) saves into the same layout.

Privacy: photos go from the browser to the kernel on your machine and nowhere else; ``Delete all photos``
(or :func:`data_loaders.personal.delete_photos`) removes them. Like every widget, it takes what it shows or
writes (here a folder) and resolves no data location itself.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import anywidget
import ipywidgets as ipw
import traitlets

from data_loaders.emotions import EMOTIONS
from data_loaders.files import PHOTO_SPLITS, atomic_write

from .frontend import CAMERA_PART, compose_module

_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


class Camera(anywidget.AnyWidget):
    """The webcam part: live preview, countdown, capture button; captures arrive as ``{"kind": "capture",
    "jpeg": <base64>}`` messages handled by :class:`PhotoCapture`."""

    _esm = compose_module(CAMERA_PART, "capture.js")  # the shared camera start, then this widget's render
    _css = Path(__file__).with_name("capture.css")
    camera_state = traitlets.Unicode("starting").tag(sync=True)  #: "live", "starting", or why there is none
    countdown = traitlets.Int(3).tag(sync=True)  #: seconds before a capture


def save_photo(folder: str | os.PathLike, split: str, emotion: str, data: bytes) -> Path:
    """Save one photo as ``<folder>/<split>/<emotion>/<n><suffix>`` atomically and return its path.

    ``n`` is the next free number; the suffix follows the image format (JPEG → ``.jpg``).

    Raises:
        ValueError: an unknown split or emotion, or ``data`` that is not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if split not in PHOTO_SPLITS:
        raise ValueError(f"split must be one of {PHOTO_SPLITS}, got {split!r}")
    if emotion.lower() not in {e.lower() for e in EMOTIONS}:
        raise ValueError(f"unknown emotion {emotion!r}: expected one of {', '.join(EMOTIONS)}")
    try:
        with Image.open(io.BytesIO(data)) as im:
            suffix = _SUFFIXES.get(im.format or "", ".jpg")
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not an image ({exc})") from None
    target_dir = Path(folder) / split / emotion.lower()
    target_dir.mkdir(parents=True, exist_ok=True)
    taken = {int(p.stem) for p in target_dir.iterdir() if p.stem.isdigit()}
    n = next(i for i in range(1, len(taken) + 2) if i not in taken)
    target = target_dir / f"{n}{suffix}"
    with atomic_write(target) as tmp:
        tmp.write_bytes(data)
    return target


def _thumbnail(path: Path, side: int = 72) -> str:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


class PhotoCapture(ipw.VBox):
    """Webcam capture plus upload fallback, saving into ``folder``.

    Args:
        folder: where photos go (``<folder>/<train|test>/<emotion>/<n>.jpg``; created on the first photo), e.g.
            ``data_loaders.personal.personal_path()``.
        countdown: seconds between clicking *Capture* and the photo.

    Raises:
        ValueError: ``countdown`` < 0.

    A photo that cannot be saved (not an image, or a folder that cannot be written) is not saved, and the status
    line says why.
    """

    def __init__(self, folder: str | os.PathLike, countdown: int = 3):
        if countdown < 0:
            raise ValueError(f"countdown must be ≥ 0 seconds, got {countdown}")
        self.folder = Path(folder).expanduser()
        self.camera = Camera(countdown=countdown)
        self.emotion = ipw.Dropdown(options=[e.lower() for e in EMOTIONS], value="happy", description="expression")
        self.split = ipw.ToggleButtons(options=list(PHOTO_SPLITS), value="train", description="for")
        self.upload = ipw.FileUpload(accept="image/*", multiple=True, description="Upload photos")
        self.delete_all = ipw.Button(description="Delete all photos", button_style="danger", icon="trash")
        self.progress = ipw.HTML()
        self.message = ipw.HTML()
        self.gallery = ipw.HBox(layout=ipw.Layout(flex_flow="row wrap"))
        self.upload_box = ipw.VBox(
            [
                ipw.HTML(
                    "<b>No camera?</b> Upload photos instead (they are saved for the "
                    "expression and split chosen above)."
                ),
                self.upload,
            ]
        )
        self.camera.on_msg(self._on_message)
        self.camera.observe(self._on_camera_state, names="camera_state")
        self.upload.observe(self._on_upload, names="value")
        self.delete_all.on_click(lambda _: self.remove_all())
        super().__init__(
            [
                self.camera,
                ipw.HBox([self.emotion, self.split]),
                self.upload_box,
                self.progress,
                self.message,
                self.gallery,
                self.delete_all,
            ]
        )
        self.refresh()

    # ---- kernel-side handlers (the browser calls them through widget messages)
    def _on_message(self, _widget, content, _buffers) -> None:
        if content.get("kind") == "capture":
            self.handle_capture(base64.b64decode(content.get("jpeg", "")))

    def handle_capture(self, data: bytes, emotion: str | None = None, split: str | None = None) -> Path | None:
        """Save one captured photo for the chosen (or given) expression and split; return its path."""
        try:
            path = save_photo(self.folder, split or self.split.value, emotion or self.emotion.value, data)
        except (ValueError, OSError) as exc:  # OSError: the folder cannot be written (a file, read-only, full)
            self.message.value = f"<span style='color:#b00'>Not saved: {html.escape(str(exc))}</span>"
            return None
        self.message.value = f"Saved {path.relative_to(self.folder)}"
        self.refresh()
        return path

    def _on_upload(self, change) -> None:
        for item in change["new"]:
            self.handle_capture(bytes(item["content"]))
        if change["new"]:
            self.upload.value = ()

    def _on_camera_state(self, change) -> None:
        self.upload_box.layout.display = None if change["new"] != "live" else "none"
        if change["new"] not in ("live", "starting"):
            self.message.value = (
                f"<b>No camera</b> ({change['new']}). Use <i>Upload photos</i> to add your photos instead."
            )

    def delete(self, path: str | os.PathLike) -> None:
        """Delete one saved photo (it must be inside the photo folder)."""
        target = Path(path).resolve()
        if self.folder.resolve() not in target.parents:
            raise ValueError(f"{path} is not inside {self.folder}")
        target.unlink(missing_ok=True)
        self.refresh()

    def remove_all(self) -> int:
        """Delete every photo the widget lists (and the folders left empty); return how many were removed."""
        photos = self.photos()
        for photo in photos:
            photo.unlink(missing_ok=True)
        for folder in sorted(
            {p.parent for p in photos} | {p.parent.parent for p in photos} | {self.folder},
            key=lambda f: len(f.parts),
            reverse=True,
        ):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        n = len(photos)
        self.message.value = f"Deleted {n} photos from {self.folder}."
        self.refresh()
        return n

    def photos(self) -> list[Path]:
        """Saved photos in ``split/emotion/n`` order."""
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.glob("*/*/*") if p.is_file() and not p.name.startswith("."))

    def refresh(self) -> None:
        """Redraw the progress line and the thumbnails from what is on disk."""
        photos = self.photos()
        done = {s: {p.parent.name for p in photos if p.parent.parent.name == s} for s in PHOTO_SPLITS}
        self.progress.value = (
            " · ".join(f"{s}: {len(done[s])}/7 expressions" for s in PHOTO_SPLITS)
            + f" · {len(photos)} photo{'' if len(photos) == 1 else 's'} in {self.folder}"
        )
        tiles = []
        for p in photos:
            button = ipw.Button(description="delete", layout=ipw.Layout(width="72px"))
            button.on_click(lambda _, path=p: self.delete(path))
            label = ipw.HTML(f"<small>{p.parent.parent.name}/{p.parent.name}/{p.name}</small>")
            tiles.append(ipw.VBox([ipw.HTML(f"<img src='{_thumbnail(p)}' width=72>"), label, button]))
        self.gallery.children = tiles
