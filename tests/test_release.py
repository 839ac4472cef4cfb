"""assignments/ is exactly what nbgrader makes from solutions/, and gives nothing away."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO
from course import ASSIGNMENTS
from course import nbgrader_steps as steps


@pytest.fixture
def course_copy(tmp_path):
    """The course folders in a scratch root, so tests never touch the real gradebook or release."""
    for name in ("nbgrader_config.py", "solutions", "assignments"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


@pytest.mark.slow  # nbgrader generates every assignment: about 10 s
def test_committed_release_is_what_generate_assignment_makes(course_copy):
    committed = {p.relative_to(REPO): p.read_bytes() for p in (REPO / "assignments").rglob("*") if p.is_file()}
    shutil.rmtree(course_copy / "assignments")
    steps.release(root=course_copy)
    fresh = {
        p.relative_to(course_copy): p.read_bytes() for p in (course_copy / "assignments").rglob("*") if p.is_file()
    }
    assert sorted(fresh) == sorted(committed), "assignments/ holds other files than a fresh release"
    stale = [str(p) for p in fresh if fresh[p] != committed[p]]
    assert not stale, f"stale release (run `make release` and commit): {stale}"


def test_every_assignment_is_released():
    for aid, notebook in ASSIGNMENTS.items():
        assert (REPO / "solutions" / aid / f"{notebook}.ipynb").is_file()
        assert (REPO / "assignments" / aid / f"{notebook}.ipynb").is_file()


def test_release_gives_away_no_solution_and_no_hidden_test():
    for path in (REPO / "assignments").rglob("*.ipynb"):
        text = path.read_text()
        for marker in (
            "BEGIN SOLUTION",
            "END SOLUTION",
            "BEGIN HIDDEN TESTS",
            "END HIDDEN TESTS",
            'PrivateTest" in _full',
            "_held_out",
            "FER2013_PATH=/",
        ):
            assert marker not in text, f"{path.relative_to(REPO)} contains {marker!r}"


def test_notebooks_are_stored_without_outputs():
    for path in list((REPO / "solutions").rglob("*.ipynb")) + list((REPO / "assignments").rglob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path} has outputs"


def test_every_graded_cell_has_points_and_they_add_up_to_the_stated_total():
    for aid, notebook in ASSIGNMENTS.items():
        nb = json.loads((REPO / "solutions" / aid / f"{notebook}.ipynb").read_text())
        graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        # an extra-credit answer is worth 0 of the base; graders award nbgrader's extra credit on it
        assert all(g.get("points", 0) > 0 or g["grade_id"].startswith("q_extra_credit") for g in graded)
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
        assert len(ids) == len(set(ids)), "grade_ids must be unique"
        total = sum(g["points"] for g in graded)
        assert f"**{total:g} points**" in "".join(nb["cells"][0]["source"]), "the title cell states the total"


def test_release_refuses_a_source_folder_holding_a_model(course_copy):
    (course_copy / "solutions" / "ps1_fer2013_cnn" / "model_2.keras").write_bytes(b"weights")
    with pytest.raises(steps.GradingError, match="model_2.keras"):
        steps.release(root=course_copy)


@pytest.mark.slow
def test_an_edited_notebook_can_be_released_again_once_the_demo_submission_is_removed(course_copy):
    from nbgrader.api import Gradebook

    aid, name = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
    steps.release(aid, root=course_copy)
    with Gradebook(f"sqlite:///{course_copy / 'grading' / 'gradebook.db'}") as gb:
        gb.add_student("sample-student")
        gb.add_submission(aid, "sample-student")
    source = course_copy / "solutions" / aid / name
    nb = json.loads(source.read_text())
    nb["cells"].append(
        {
            "cell_type": "markdown",
            "source": ["A new paragraph."],
            "metadata": {
                "nbgrader": {
                    "grade": False,
                    "grade_id": "new_note",
                    "locked": True,
                    "schema_version": 3,
                    "solution": False,
                }
            },
        }
    )
    source.write_text(json.dumps(nb))
    with pytest.raises(steps.GradingError, match="submissions associated"):
        steps.release(aid, root=course_copy)  # nbgrader protects existing submissions
    steps.remove_submission(aid, "sample-student", root=course_copy)
    steps.release(aid, root=course_copy)
    assert "A new paragraph." in (course_copy / "assignments" / aid / name).read_text()
