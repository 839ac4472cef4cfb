"""Faces labelled with Action Units (intensity and presence) and valence/arousal, in the formats users meet.

Labels follow FACS (Ekman, Friesen & Hager 2002, *Facial Action Coding System: The Manual*): each Action Unit
(AU) is scored absent (0) or at intensity A (trace) … E (maximum), written here as the numbers **0-5**
(1 = A … 5 = E), the scale OpenFace's ``AUxx_r`` columns and DISFA's label files use. Presence is a separate
boolean per AU. Valence (unpleasant … pleasant) and arousal (calm … excited) are in [-1, 1] as in Russell's
circumplex (Russell 1980).

Formats read by :func:`load_action_units`, one module each, as :mod:`data_loaders.synthetic` is split:

* **OpenFace 2.0 output** (:mod:`.openface`; Baltrušaitis et al. 2018; ``FeatureExtraction -aus -simalign``): a
  csv with ``frame``, ``face_id``, ``timestamp``, ``confidence``, ``success`` and per AU ``AU01_r`` (intensity
  0-5) and ``AU01_c`` (presence 0/1) columns — the file py-feat's ``read_openface`` reads; header names may carry
  a leading space (``" AU01_r"``). Face images are OpenFace's aligned crops beside it,
  ``<name>_aligned/frame_det_<face_id:02d>_<frame:06d>.bmp`` (``.png``/``.jpg`` too). Rows with
  ``success = 0`` (no face tracked) are left out and listed in ``bad_rows``. Optional extra columns
  ``valence``, ``arousal`` ([-1, 1]), ``emotion`` (FER2013 code or name) and ``Usage`` are used when present.
  A folder of such csv files is read file by file (one subject per file).
* **DISFA-style folders** (:mod:`.disfa`; Mavadati et al. 2013): ``<subject>/<subject>_au<N>.txt`` with one line
  ``frame,intensity`` (intensity 0-5) per frame and AU — DISFA's ``ActionUnit_Labels`` layout — plus the face
  crops of the frames in ``<subject>/frames/<frame>.png|jpg|bmp`` (any zero padding). Presence is
  intensity ≥ 1 (A or more; many DISFA papers use ≥ 2 instead). DISFA has no valence/arousal (NaN).
* **Synthetic FACS faces** (:mod:`.synthetic_faces`, the default): the kit's synthetic ``fer2013.csv`` images with
  the AU intensities each face was rendered with (:func:`data_loaders.synthetic.sample_image_aus`; the kit's 0-1
  scale × 5, so continuous like OpenFace's ``_r``), presence = intensity ≥ 0.5 (rounds to A or more), and
  valence/arousal from the emotion's circumplex position × expression strength
  (:mod:`data_loaders.synthetic.affect`).

Images are converted to grey and resized to 48×48. Real data without a ``Usage`` column is split **by
subject** (Training / PublicTest / PrivateTest, the last subjects in sorted order held out), so no person is
in two splits; with fewer than 3 subjects the frames are split in order instead (identity then leaks); see
:mod:`.frames`.

The other modules: :mod:`.facts` (the FACS table :data:`AU_FACTS`, :func:`au_name`, the 0-5 scale),
:mod:`.dataset` (:class:`ActionUnitDataset`, :class:`ActionUnitFormatError`), :mod:`.loader` (resolution,
format detection, caching).
"""

from __future__ import annotations

from .dataset import IMAGE_SIZE, ActionUnitDataset, ActionUnitFormatError
from .facts import AU_FACTS, MAX_INTENSITY, au_name
from .loader import HOW_TO_GET, action_units_path, load_action_units

__all__ = [
    "AU_FACTS",
    "ActionUnitDataset",
    "ActionUnitFormatError",
    "HOW_TO_GET",
    "IMAGE_SIZE",
    "MAX_INTENSITY",
    "action_units_path",
    "au_name",
    "load_action_units",
]
