"""Expression Lab data loaders: one module per source, one return shape per kind of data.

Images come back as ``uint8 (N, 48, 48)`` with labels ``int64 (N,)`` in FER2013 order inside an
:class:`~data_loaders.dataset.ImageDataset`; point clouds as ``float32 (N, P, 3)`` metres inside a
:class:`~data_loaders.dataset.PointCloudDataset`. Loaders never normalise for a model: that is the student's job.
"""

from .action_units import ActionUnitDataset, ActionUnitFormatError, load_action_units
from .dataset import BadRow, ImageDataset, PointCloudDataset
from .emotions import EMOTIONS, emotion_code
from .fer2013 import FER2013FormatError, fer2013_path, fer2013_splits, grading_test_set, load_fer2013
from .iphonex import IPhoneXFormatError, iphonex_path, load_iphonex
from .personal import PersonalPhotoError, load_personal, personal_path

__all__ = [
    "BadRow",
    "EMOTIONS",
    "FER2013FormatError",
    "IPhoneXFormatError",
    "ImageDataset",
    "PointCloudDataset",
    "emotion_code",
    "fer2013_path",
    "fer2013_splits",
    "grading_test_set",
    "iphonex_path",
    "load_fer2013",
    "load_iphonex",
    "ActionUnitDataset",
    "ActionUnitFormatError",
    "load_action_units",
    "PersonalPhotoError",
    "load_personal",
    "personal_path",
]
