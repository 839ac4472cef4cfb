"""``python -m course autograde``: parallel, sandboxed grading gives plain nbgrader's scores, and a submission
that fails or runs too long is recorded while the rest of the batch is graded.

The tiny TensorFlow-free assignment of ``conftest.py`` (the behaviour is nbgrader's and the batch's, not one
notebook's; ps3 in the sandbox is graded by ``test_sandbox_attacks.py`` and ``test_hub.py``): three submissions
(a wrong ``double``, an unanswered notebook, a damaged file) graded first by plain ``nbgrader autograde`` one
after another, then again by ``python -m course autograde --jobs 2 --sandbox``; then the partly right one is
handed in again with an answer that sleeps, and a batch with a 3 s limit stops it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import nbformat
import pytest

from conftest import TINY_ID as AID
from conftest import TINY_NOTEBOOK as NOTEBOOK
from conftest import hand_in, make_tiny_course
from course import autograde
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def _scores(root, student):
    return {s.cell: s.score for s in steps.cell_scores(AID, student, root)}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from conftest import sandbox_or_skip

    sandbox_or_skip()
    root = tmp_path_factory.mktemp("parallel")
    release, source = make_tiny_course(root)
    partial = fill_answers(release, source)
    cell_by_grade_id(partial, "double").source = "def double(x):\n    return x\n"  # wrong; triple is right
    hand_in(root, "partial", AID, partial, NOTEBOOK)
    hand_in(root, "unanswered", AID, nbformat.read(release, as_version=4), NOTEBOOK)
    hand_in(root, "damaged", AID, '{"cells": [', NOTEBOOK)

    plain = {}
    for student in ("partial", "unanswered"):
        steps.autograde(AID, student, root)
        plain[student] = _scores(root, student)
    proc = subprocess.run(
        [sys.executable, "-m", "course", "autograde", AID, "--jobs", "2", "--sandbox"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    parallel = {s: _scores(root, s) for s in ("partial", "unanswered")}
    summary = json.loads((root / "grading" / "autograde" / f"{AID}.json").read_text())

    # the partly right student hands in again, with an answer that runs far past the batch's limit
    resubmitted = steps.submission_folder("partial", AID, root) / NOTEBOOK
    slow = nbformat.read(resubmitted, as_version=4)
    cell_by_grade_id(slow, "triple").source = "import time\ntime.sleep(120)\n" + cell_by_grade_id(slow, "triple").source
    nbformat.write(slow, resubmitted)
    late = autograde.autograde_class(AID, ["partial"], sandbox=False, root=root, timeout=3, progress=False)
    after_timeout = _scores(root, "partial")
    return dict(
        root=root, plain=plain, parallel=parallel, proc=proc, summary=summary, late=late, after_timeout=after_timeout
    )


def test_parallel_sandboxed_scores_equal_plain_nbgrader(course):
    assert course["parallel"] == course["plain"]
    assert sum(v for v in course["plain"]["partial"].values() if v) > 0  # a discriminating case: partly right
    assert sum(v for v in course["plain"]["unanswered"].values() if v) == 0


def test_a_damaged_submission_is_recorded_and_the_rest_graded(course):
    rows = {r["student"]: r for r in course["summary"]}
    assert rows["damaged"]["status"] == "failed" and rows["damaged"]["reason"], rows["damaged"]
    assert rows["partial"]["status"] == rows["unanswered"]["status"] == "graded"
    assert course["proc"].returncode == 1  # not every submission was graded
    assert "2 of 3 graded" in course["proc"].stdout


def test_a_submission_past_the_timeout_is_recorded_and_keeps_its_last_grades(course):
    (result,) = course["late"]
    assert result.status == "timeout" and "3 s" in result.reason
    assert course["after_timeout"] == course["parallel"]["partial"]
    csv = (course["root"] / "grading" / "autograde" / f"{AID}.csv").read_text().splitlines()
    assert csv[0].startswith("student,status,auto_score") and len(csv) == 4  # the earlier rows are kept
    assert [line.split(",")[:2] for line in csv[1:]] == [
        ["damaged", "failed"],
        ["partial", "timeout"],
        ["unanswered", "graded"],
    ]


def test_the_course_gradebook_holds_one_submission_per_student(course):
    con = sqlite3.connect(course["root"] / "grading" / "gradebook.db")
    rows = con.execute("SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id").fetchall()
    con.close()
    assert dict(rows) == {"partial": 1, "unanswered": 1}


def test_the_data_a_sandboxed_kernel_reads_is_made_before_grading(monkeypatch):
    """The sandbox sees the cache read-only: what each assignment's notebooks generate on first use (synthetic
    data, the fallback model_2, the default clip) is made by ``prepare_data`` first, by trusted code."""
    import course.fallback_model
    import data_loaders
    import data_loaders.video

    made = []
    monkeypatch.setattr(data_loaders, "load_fer2013", lambda *a, **k: made.append("faces"))
    monkeypatch.setattr(course.fallback_model, "fallback_model_2", lambda *a, **k: made.append("model_2"))
    monkeypatch.setattr(data_loaders.video, "video_path", lambda *a, **k: made.append(("clip", *a)))
    monkeypatch.setattr(data_loaders, "load_action_units", lambda *a, **k: made.append("action units"))
    steps = autograde.prepare_data("ps5_faces_in_motion")
    assert steps == ["load_fer2013", "fallback_model_2", "default_clip"], f"expected the ps5 data made, found {steps}"
    assert made == ["faces", "model_2", ("clip", "synthetic")], f"expected the synthetic clip rendered, found {made}"
    for assignment in ("ps2_personal_transfer", "ps6_explain_compare", "ps4_action_units"):  # from model_2 too
        steps = autograde.prepare_data(assignment)
        assert "fallback_model_2" in steps, f"expected the fallback model_2 made for {assignment}, found {steps}"
    assert "load_action_units" in steps, f"expected the Action Unit data parsed for ps4, found {steps}"
