"""Expression Lab data loaders: one module per source, one return shape per kind of data.

Images come back as ``uint8 (N, 48, 48)`` with labels ``int64 (N,)`` in FER2013 order inside an
:class:`~data_loaders.dataset.ImageDataset`. Loaders never normalise for a model: that is the student's job.
"""

from .dataset import BadRow, ImageDataset
from .emotions import EMOTIONS, emotion_code
from .fer2013 import FER2013FormatError, fer2013_path, load_fer2013

__all__ = ["BadRow", "EMOTIONS", "FER2013FormatError", "ImageDataset", "emotion_code", "fer2013_path",
           "load_fer2013"]
