"""Writing files safely and recognising image files: shared by the loaders, the generator and the widgets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: File name endings of the image files the kit reads (lower case; every format Pillow opens for FER2013 image
#: folders and personal photos).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

#: The split folders of a personal photo set, ``<split>/<emotion>/<photo>``: what the capture widget writes, the
#: stand-in generator draws and :func:`data_loaders.load_personal` reads.
PHOTO_SPLITS = ("train", "test")


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, rename it to ``path``.

    A reader (another process, a notebook that is re-run, the grader) never sees a half-written file: the
    rename replaces ``path`` in one step on the same file system. When the block raises, the temporary file
    is removed and ``path`` is left as it was. The folder is created when missing.

    Args:
        path: the file to write.
        suffix: appended to the temporary name, for writers that pick a format from it (OpenCV's ``.mp4``).

    Raises:
        OSError: the folder cannot be created or the file cannot be renamed (the temporary file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
