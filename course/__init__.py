"""Instructor tooling: releasing assignments, the demo course run, autograding helpers, model evaluation.

Nothing here holds an answer a student is asked to write: answers live only in ``solutions/`` notebooks.
"""

from pathlib import Path

#: The repository root (where ``nbgrader_config.py`` lives).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Assignment ids in course order, each ``solutions/<id>/<notebook>.ipynb``.
ASSIGNMENTS: dict[str, str] = {
    "ps1_fer2013_cnn": "fer2013_cnn",
    "ps2_personal_transfer": "personal_transfer",
    "ps3_iphonex_3dcnn": "iphonex_3dcnn",
    "ps4_action_units": "action_units",
    "ps5_faces_in_motion": "faces_in_motion",
    "ps6_explain_compare": "explain_compare",
}
