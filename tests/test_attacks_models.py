"""Handed-in model files scored outside the student's kernel (:mod:`course.model_scoring`), and the contamination flag.

The attack: ps1's hidden test scores ``model_2.keras`` inside the student's kernel, so an answer cell that replaces
``keras.models.load_model`` with an oracle, or overwrites ``./model_2.keras`` in the grading folder with a lookup
of the graded faces, earns 6 of 6 points for any file handed in. The separate scorer loads only the
handed-in file (``safe_mode``) and the data in a sandboxed process, and the gradebook keeps its score.

Fast tests: the rules equal the notebooks', the result line is parsed strictly, links and special files are not
followed, the gradebook override on a small nbgrader gradebook with tiny Keras models on random faces (a bad model
gets 0 where the notebook said 6, a Lambda model and garbage files are refused with a reason, a model trained on
its test faces is flagged, an honest one is not). Slow: the ps3 and ps4 scorers on the synthetic data, and a real
``python -m course autograde ps1_fer2013_cnn --sandbox`` of a notebook carrying both oracles.

The sandboxed tests need bubblewrap (skipped without it unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1``).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED_CACHE, hand_in, write_fer_csv
from course import model_scoring as ms
from course import review
from course.notebook_cells import cells_by_grade_id, sources_by_grade_id

PS1, NB1 = "ps1_fer2013_cnn", "fer2013_cnn"
SOLUTIONS = {aid: REPO / "solutions" / aid / f"{nb}.ipynb" for aid, nb in
             [(PS1, NB1), ("ps3_iphonex_3dcnn", "iphonex_3dcnn"), ("ps4_action_units", "action_units")]}
#: Faces per Usage in the random FER2013 file of these tests.
FACES = 300


def _sandbox_or_skip() -> None:
    from course import sandbox

    try:
        sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        if os.environ.get("EXPRESSION_LAB_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"EXPRESSION_LAB_REQUIRE_SANDBOX=1 but the sandbox cannot start: {err}")
        pytest.skip(f"bubblewrap sandbox not available: {err}")


# ----------------------------------------------------------------------------------- the rules are the notebooks'

def _assigned(source: str, name: str):
    """The value assigned to ``name`` at the top level of ``source``: a literal, or the grading-mode branch of
    ``X if GRADING else Y``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value.body if isinstance(node.value, ast.IfExp) else node.value
            return ast.literal_eval(value)
    raise AssertionError(f"expected an assignment to {name} in the cell, found none")


def test_the_rules_are_the_source_notebooks_own():
    ps1, ps3, ps4 = (sources_by_grade_id(SOLUTIONS[a]) for a in (PS1, "ps3_iphonex_3dcnn", "ps4_action_units"))
    found = {"ps1 SEED": _assigned(ps1["config"], "SEED"),
             "ps1 MODEL_2_BANDS": _assigned(ps1["test_model_2_accuracy"].split("\n\n")[0], "MODEL_2_BANDS"),
             "ps3 SEED": _assigned(ps3["config"], "SEED"), "ps3 GRID": _assigned(ps3["config"], "GRID"),
             "ps3 SUBJECT_LIMIT (grading)": _assigned(ps3["config"], "SUBJECT_LIMIT")}
    expected = {"ps1 SEED": ms.PS1_SEED, "ps1 MODEL_2_BANDS": ms.MODEL_2_BANDS, "ps3 SEED": ms.PS3_SEED,
                "ps3 GRID": ms.PS3_GRID, "ps3 SUBJECT_LIMIT (grading)": ms.PS3_SUBJECT_LIMIT}
    assert found == expected, f"expected the notebooks' constants {expected}, found {found}"
    hidden1 = ps1["test_model_2_accuracy"].split("### BEGIN HIDDEN TESTS")[1]
    assert "grading_test_set(_full, seed=SEED)" in hidden1 and 'submitted_accuracy(_graded_on)' in hidden1, (
        f"expected ps1's hidden test to grade on grading_test_set(load_fer2013(), seed=SEED), found:\n{hidden1}")
    assert 'batch_size=512' in ps1["test_model_2_accuracy"] and '/ 255.0' in ps1["test_model_2_accuracy"], (
        "expected ps1's submitted_accuracy to feed float32 faces / 255 in batches of 512, as the scorer does")
    assert "subject_split(clouds.subjects, test_fraction=0.2, seed=SEED)" in ps3["split_data"], (
        f"expected ps3's split with test_fraction=0.2 (PS3_TEST_FRACTION), found {ps3['split_data']!r}")
    assert "x_test[:4]" in ps3["test_model_4_saved"] and '_check_model_4("model_4.keras")' in ps3["test_model_4_saved"], (
        "expected ps3's hidden check of model_4.keras on x_test[:4] (PS3_CHECK_CLOUDS)")
    hidden4 = ps4["test_model_5_submitted"]
    assert f"_auc >= {ms.MODEL_5_MIN_AUC}" in hidden4 and 'au_data.subset("PrivateTest")' in hidden4, (
        f"expected ps4's pass mark {ms.MODEL_5_MIN_AUC} on PrivateTest, found:\n{hidden4}")
    for (aid, gid), scorer in ms.REGISTRY.items():
        meta = cells_by_grade_id(SOLUTIONS[aid])[gid]["metadata"]["nbgrader"]
        assert meta["points"] == scorer.points and SOLUTIONS[aid].stem == scorer.notebook, (
            f"expected {aid}/{gid} worth {meta['points']} points in {SOLUTIONS[aid].stem}, found the scorer's "
            f"{scorer.points} in {scorer.notebook}")
    assert [ms.accuracy_points(a) for a in (0.0, 0.439, 0.44, 0.499, 0.5, 0.559, 0.56, 1.0)] == [0, 0, 2, 2, 4, 4, 6, 6]


def test_every_graded_cell_that_loads_a_handed_in_model_is_registered():
    """A graded cell naming a bare ``"model_N.keras"`` (the handed-in file; ``MODEL_DIR / "model_N.keras"`` is the
    grading run's own model) has a scorer."""
    import glob

    found = set()
    for path in glob.glob(str(REPO / "solutions" / "*" / "*.ipynb")):
        aid = Path(path).parent.name
        for gid, cell in cells_by_grade_id(path).items():
            source = "".join(cell["source"])
            if cell["metadata"]["nbgrader"].get("grade") and re.search(r"""(?<!/ )["']model_\d\.keras["']""", source):
                found.add((aid, gid))
    assert found == set(ms.REGISTRY), (f"expected every graded cell that reads a handed-in model file registered, "
                                       f"found cells {sorted(found)} and scorers {sorted(ms.REGISTRY)}")


# ----------------------------------------------------------------------------------- the result line is untrusted

def _line(**changes) -> str:
    record = {"version": 1, "measure": "fer_accuracy", "ok": True, "reason": "",
              "metrics": {"accuracy": 0.5, "faces": 100}}
    record.update(changes)
    return ms.RESULT_PREFIX + json.dumps(record)


@pytest.mark.parametrize("stdout, expected", [
    ("", "expected one result line"),
    (_line() + "\n" + _line(), "expected one result line"),
    ("x" * (ms.MAX_STDOUT_CHARS + 1), "characters"),
    (ms.RESULT_PREFIX + "{not json", "not JSON"),
    (ms.RESULT_PREFIX + '{"version": 1, "measure": "fer_accuracy", "ok": true, "reason": "", '
     '"metrics": {"accuracy": NaN, "faces": 1}}', "not JSON"),
    (_line(metrics={"accuracy": 1.5, "faces": 100}), "fraction"),
    (_line(metrics={"accuracy": 0.5, "faces": 100.0}), "count"),
    (_line(metrics={"accuracy": True, "faces": 100}), "number"),
    (_line(metrics={"accuracy": 0.5}), "expected metrics"),
    (_line(metrics={"accuracy": 0.5, "faces": 1, "points": 6}), "expected metrics"),
    (_line(measure="au_auc"), "measure"),
    (_line(version=2), "version"),
    (_line(extra=1), "keys"),
    (_line(ok=False, reason=""), "reason"),
    (_line(ok=False, reason="refused"), "no metrics"),
    (_line(reason="x" * (ms.MAX_REASON_CHARS + 1)), "reason has"),
])
def test_the_result_line_is_parsed_strictly(stdout, expected):
    with pytest.raises(ms.ScoringOutputError, match=expected):
        ms.parse_result(stdout, "fer_accuracy")


def test_a_well_formed_result_line_is_read_among_other_output():
    record = ms.parse_result("noise\n" + _line(metrics={"accuracy": 0.61, "faces": 3589, "public_accuracy": 0.6,
                                                        "public_faces": 3589}) + "\nmore noise", "fer_accuracy")
    assert record["metrics"]["accuracy"] == 0.61 and record["ok"], f"expected the metrics back, found {record}"


# ----------------------------------------------------------------------------------- a small course and gradebook

@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An nbgrader gradebook holding ps1's accuracy cell and ps3's model_4 cell, no students (a new gradebook runs
    ``alembic heads`` in a new process, which takes seconds: the tests copy this one)."""
    from nbgrader.api import Gradebook

    db = tmp_path_factory.mktemp("gradebook") / "template.db"
    from alembic.script import ScriptDirectory
    from nbgrader import dbutil

    head = ScriptDirectory(dbutil.ALEMBIC_DIR).get_current_head()
    with pytest.MonkeyPatch.context() as mp:  # nbgrader would ask a new `alembic` process for this
        mp.setattr("nbgrader.api.get_alembic_version", lambda: head)
        with Gradebook(f"sqlite:///{db}") as gb:
            for assignment, notebook, grade_id, points in ((PS1, NB1, "test_model_2_accuracy", 6),
                                                           ("ps3_iphonex_3dcnn", "iphonex_3dcnn", "test_model_4_saved",
                                                            4)):
                gb.add_assignment(assignment)
                gb.add_notebook(notebook, assignment)
                gb.add_grade_cell(grade_id, notebook, assignment, max_score=points, cell_type="code")
    return db


def _gradebook(template: Path, root: Path, student: str, notebook_score: float | None, assignment: str = PS1,
               grade_id: str = "test_model_2_accuracy") -> Path:
    """A worker gradebook (a copy of ``template``) holding ``student``'s submission of ``assignment``, the cell
    ``grade_id`` scored ``notebook_score`` by "the notebook"."""
    import shutil

    from nbgrader.api import Gradebook

    db = root / "grading" / "autograde" / "workers" / f"{student}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, db)
    notebook = NB1 if assignment == PS1 else "iphonex_3dcnn"
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_student(student)
        gb.add_submission(assignment, student)
        grade = gb.find_grade(grade_id, notebook, assignment, student)
        grade.auto_score = notebook_score
        grade.needs_manual_grade = False
        gb.db.commit()
    return db


def _grade(db: Path, student: str, grade_id: str = "test_model_2_accuracy", assignment: str = PS1,
           notebook: str = NB1):
    """(auto_score, needs_manual_grade, the cell's auto comment) in ``db``."""
    from nbgrader.api import Comment, Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        grade = gb.find_grade(grade_id, notebook, assignment, student)
        comment = gb.db.query(Comment).filter(Comment.cell_id == grade.cell_id,
                                              Comment.notebook_id == grade.notebook_id).one_or_none()
        return grade.auto_score, grade.needs_manual_grade, comment.auto_comment if comment else None


def _hand_in_file(root: Path, student: str, source: Path | bytes, name: str = "model_2.keras",
                  assignment: str = PS1) -> Path:
    folder = root / "grading" / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    return folder / name


@pytest.fixture(scope="module")
def random_faces(tmp_path_factory):
    """A FER2013 csv of random faces with random labels, FACES per Usage (Training, PublicTest, PrivateTest), and
    tiny models (Flatten + Dense softmax): ``honest`` fitted on Training (chance level, ~1/7, on both test sets),
    ``memorised`` fitted on PrivateTest until it knows every face (and chance on PublicTest), ``lambda`` with a
    Lambda layer. Returns a dict of paths and the arrays."""
    import keras

    folder = tmp_path_factory.mktemp("random-faces")
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (3 * FACES, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 3 * FACES)
    usages = ["Training"] * FACES + ["PublicTest"] * FACES + ["PrivateTest"] * FACES
    csv = write_fer_csv(folder / "fer2013.csv", images, labels, usages)
    x = images[..., None].astype("float32") / 255.0

    def dense(name):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(7, activation="softmax")], name=name)
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    paths = {}
    honest = dense("honest")
    honest.fit(x[:FACES], labels[:FACES], epochs=5, batch_size=64, verbose=0)
    paths["honest"] = folder / "honest.keras"
    honest.save(paths["honest"])
    memorised = dense("memorised")
    memorised.fit(x[2 * FACES:], labels[2 * FACES:], epochs=60, batch_size=32, verbose=0)
    seen = float(np.mean(memorised.predict(x[2 * FACES:], verbose=0).argmax(1) == labels[2 * FACES:]))
    assert seen > 0.95, f"expected the memorised model to know its training faces, found {seen:.1%}"
    paths["memorised"] = folder / "memorised.keras"
    memorised.save(paths["memorised"])
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(
        keras.layers.Lambda(lambda t: t * 1.0, name="innocent_scaling")(inputs)))
    paths["lambda"] = folder / "lambda.keras"
    keras.Model(inputs, outputs).save(paths["lambda"])
    return {"csv": csv, **paths}


@pytest.fixture
def course(tmp_path, random_faces, monkeypatch):
    """A course folder whose FER2013 is the random faces (the separate scorer's data comes from FER2013_PATH)."""
    monkeypatch.setenv("FER2013_PATH", str(random_faces["csv"]))
    return tmp_path / "course"


# ----------------------------------------------------------------------------------- nothing is followed

def test_links_and_special_files_are_not_followed_or_scored(course, random_faces, tmp_path, template_db):
    good = random_faces["memorised"]  # a model that would earn 6 points if it were read
    cases = {}
    folder = course / "grading" / "submitted"
    (folder / "link" / PS1).mkdir(parents=True)
    os.symlink(good, folder / "link" / PS1 / "model_2.keras")
    cases["link"] = "symbolic link"
    (folder / "dirlink").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model_2.keras").write_bytes(good.read_bytes())
    os.symlink(elsewhere, folder / "dirlink" / PS1)
    cases["dirlink"] = "not a plain folder"
    (folder / "fifo" / PS1).mkdir(parents=True)
    os.mkfifo(folder / "fifo" / PS1 / "model_2.keras")
    cases["fifo"] = "not a regular file"
    (folder / "hardlink" / PS1).mkdir(parents=True)
    os.link(elsewhere / "model_2.keras", folder / "hardlink" / PS1 / "model_2.keras")
    cases["hardlink"] = "hard link"
    (folder / "huge" / PS1).mkdir(parents=True)
    with open(folder / "huge" / PS1 / "model_2.keras", "wb") as f:
        f.truncate(ms.MAX_MODEL_BYTES + 1)  # sparse: no disk used
    cases["huge"] = "more than the 100 MB"
    (folder / "absent" / PS1).mkdir(parents=True)
    cases["absent"] = "no model_2.keras handed in"
    for student, expected in cases.items():
        db = _gradebook(template_db, course, student, 6)
        reasons = ms.apply_model_scores(course, PS1, student, db, sandbox=True)
        score, manual, comment = _grade(db, student)
        assert score == 0, f"{student}: expected 0 points for a model file that is not a plain file, found {score}"
        assert len(reasons) == 1 and expected in reasons[0] and "notebook scored 6" in reasons[0], (
            f"{student}: expected one review reason saying '{expected}', found {reasons}")
        assert expected in comment and "Scored separately" in comment, f"{student}: expected the comment to say why, " \
                                                                       f"found {comment!r}"
        assert not manual, f"{student}: a refused file is the student's doing, not a case for manual grading"
    assert not list((course / "grading").rglob("*.npz")), "expected no data written for files never scored"


def test_a_scoring_process_that_fails_scores_zero_and_asks_for_a_person(course, random_faces, monkeypatch, template_db):
    _hand_in_file(course, "crashed", random_faces["memorised"])
    db = _gradebook(template_db, course, "crashed", 6)

    def crash(*args, **kwargs):
        raise ms.ScoringOutputError("the separate scoring of model_2.keras ran past 300 s and was stopped")

    monkeypatch.setattr(ms, "_run_scorer", crash)
    reasons = ms.apply_model_scores(course, PS1, "crashed", db)
    score, manual, comment = _grade(db, "crashed")
    assert (score, manual) == (0, True), f"expected 0 points and manual grading, found {score} and {manual}"
    assert len(reasons) == 1 and "ran past 300 s" in reasons[0] and "until a person grades it" in reasons[0], (
        f"expected a reason asking for a person, found {reasons}")


def test_the_contamination_rule():
    honest = {"accuracy": 0.665, "faces": 3589, "public_accuracy": 0.66, "public_faces": 3589}
    assert ms.contamination_reason(honest, {"usage": "PrivateTest"}) == "", "expected a 0.5-point gap unflagged"
    cheat = dict(honest, accuracy=0.75)
    reason = ms.contamination_reason(cheat, {"usage": "PrivateTest"})
    assert "+9.0 points" in reason and "Not penalised" in reason, f"expected a 9-point gap flagged, found {reason!r}"
    small = {"accuracy": 0.30, "faces": 200, "public_accuracy": 0.22, "public_faces": 200}
    assert ms.contamination_reason(small, {}) == "", (
        "expected an 8-point gap on 200 faces each (under 4 standard errors, ~17 points) unflagged")
    assert ms.contamination_reason({"accuracy": 0.99, "faces": 3589}, {}) == "", "expected no flag without PublicTest"
    lower = dict(honest, accuracy=0.55)
    assert ms.contamination_reason(lower, {}) == "", "expected a model better on PublicTest unflagged (one-sided)"


# ----------------------------------------------------------------------------------- scored in the sandbox

@pytest.mark.sandbox
def test_an_oracle_score_falls_to_what_the_handed_in_file_earns(course, random_faces, template_db):
    """The notebook said 6 (an oracle in the kernel); the file is a chance-level model: the gradebook gets 0."""
    _sandbox_or_skip()
    _hand_in_file(course, "mallory", random_faces["honest"])
    db = _gradebook(template_db, course, "mallory", 6)
    reasons = ms.apply_model_scores(course, PS1, "mallory", db, sandbox=True)
    score, manual, comment = _grade(db, "mallory")
    assert score == 0, f"expected 0 points for a chance-level model_2.keras, found {score}"
    assert not manual, "expected no manual grading for a model that was scored"
    assert len(reasons) == 1 and "notebook scored 6 of 6" in reasons[0] and "separate scoring" in reasons[0], (
        f"expected one reason saying the notebook gave 6 and the file earns 0, found {reasons}")
    assert re.search(r"accuracy \d+\.\d% on PrivateTest \(300 faces\), \d+\.\d% on PublicTest", comment), (
        f"expected the comment to give the measured accuracies, found {comment!r}")
    assert review.read(PS1, "mallory", course) == [], "expected an honest (chance-level) model not flagged"


@pytest.mark.sandbox
def test_a_lambda_model_and_garbage_files_are_refused_with_a_reason(course, random_faces, template_db):
    _sandbox_or_skip()
    import zipfile

    zipped = course.parent / "no-config.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("model.weights.h5", b"\0" * 64)
    files = {"lambda": (random_faces["lambda"].read_bytes(), "holds a Lambda layer (innocent_scaling)"),
             "garbage": (os.urandom(4096), "is not a Keras model file"),
             "truncated": (random_faces["honest"].read_bytes()[:2000], "is not a Keras model file"),
             "noconfig": (zipped.read_bytes(), "has no config.json")}
    for student, (data, expected) in files.items():
        _hand_in_file(course, student, data)
        db = _gradebook(template_db, course, student, 6)
        reasons = ms.apply_model_scores(course, PS1, student, db, sandbox=True)
        score, manual, comment = _grade(db, student)
        assert score == 0 and not manual, f"{student}: expected 0 points (refused), found {score}, manual {manual}"
        assert len(reasons) == 1 and expected in reasons[0], f"{student}: expected '{expected}', found {reasons}"
        assert expected in comment, f"{student}: expected the comment to say '{expected}', found {comment!r}"
    db = course / "grading" / "autograde" / "workers" / "lambda.db"
    assert "Rebuild the model with Keras layers only" in _grade(db, "lambda")[2], "expected the fix in the comment"


def test_a_model_trained_on_its_test_faces_is_flagged_and_keeps_its_points(course, random_faces, template_db):
    """Plain subprocess (``sandbox=False``, the ``--no-sandbox`` path): the same code, no bubblewrap needed."""
    _hand_in_file(course, "eve", random_faces["memorised"])
    db = _gradebook(template_db, course, "eve", 6)
    reasons = ms.apply_model_scores(course, PS1, "eve", db, sandbox=False)
    score, _, comment = _grade(db, "eve")
    assert score == 6 and reasons == [], f"expected 6 points, as the notebook said, and no reason; found {score}, " \
                                         f"{reasons}"
    flags = review.read(PS1, "eve", course)
    assert [f.source for f in flags] == ["contamination"], f"expected one contamination flag, found {flags}"
    assert "PrivateTest" in flags[0].reason and "Not penalised" in flags[0].reason, flags[0].reason
    assert "100.0% on PrivateTest" in comment, f"expected the comment to give the accuracy, found {comment!r}"


# ----------------------------------------------------------------------------------- ps3 and ps4 scorers

@pytest.mark.slow
def test_the_ps3_and_ps4_scorers_on_the_synthetic_data(tmp_path, monkeypatch, template_db):
    """The ps3 check (gate) and the ps4 AUC (replace) on tiny models and the synthetic data: the measures in this
    process, and ps3's gate through :func:`apply_model_scores` (plain subprocess)."""
    import keras

    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))  # the synthetic default data, generated once
    for variable in ("IPHONEX_PATH", "AU_DATA_PATH"):
        monkeypatch.setenv(variable, "synthetic")
    arrays, _ = ms.REGISTRY[("ps3_iphonex_3dcnn", "test_model_4_saved")].data(REPO)
    x = arrays["x"]
    assert x.shape == (4, 24, 24, 24, 1) and x.dtype == np.float32 and x.max() == 1, (
        f"expected 4 voxelized test clouds (4, 24, 24, 24, 1) scaled to [0, 1], found {x.shape} {x.dtype} {x.max()}")
    inputs = keras.Input((24, 24, 24, 1))
    h = keras.layers.MaxPooling3D(4)(keras.layers.Conv3D(2, 3, padding="same")(inputs))
    cnn = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(h)))
    assert ms.measure_model_4_check(cnn, arrays) == {"clouds": 4}
    flat = keras.Sequential([keras.Input((24, 24, 24, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    with pytest.raises(ms.ScoringRefused, match=r"to be a 3D CNN \(Conv3D, MaxPooling3D\)"):
        ms.measure_model_4_check(flat, arrays)
    # gate: nbgrader's 4 points kept when the handed-in file passes; 0 when it does not
    root = tmp_path / "course"
    root.mkdir()
    (root / "solutions").symlink_to(REPO / "solutions")
    for student, model, expected in (("passes", cnn, 4), ("fails", flat, 0)):
        model.save(tmp_path / f"{student}.keras")
        _hand_in_file(root, student, tmp_path / f"{student}.keras", "model_4.keras", "ps3_iphonex_3dcnn")
        db = _gradebook(template_db, root, student, 4, "ps3_iphonex_3dcnn", "test_model_4_saved")
        reasons = ms.apply_model_scores(root, "ps3_iphonex_3dcnn", student, db, sandbox=False)
        score = _grade(db, student, "test_model_4_saved", "ps3_iphonex_3dcnn", "iphonex_3dcnn")[0]
        assert score == expected and len(reasons) == (expected == 0), (
            f"{student}: expected {expected} points and {int(expected == 0)} reason, found {score} and {reasons}")

    arrays, info = ms.REGISTRY[("ps4_action_units", "test_model_5_submitted")].data(REPO)
    presence = arrays["presence"]
    n_aus = presence.shape[1]

    class Perfect:
        def predict(self, x, **kwargs):
            return presence.astype("float32")

    class Shuffled:
        def predict(self, x, **kwargs):
            return np.random.default_rng(0).random(presence.shape).astype("float32")

    assert ms.measure_au_auc(Perfect(), arrays)["auc"] == 1.0
    assert ms.measure_au_auc(Shuffled(), arrays)["auc"] < 0.6
    award = ms.REGISTRY[("ps4_action_units", "test_model_5_submitted")].award
    assert (award({"auc": 0.65}, 0), award({"auc": 0.649}, 2)) == (2.0, 0.0), "expected 2 points from AUC 0.65"
    assert info["usage"] == "PrivateTest" and n_aus > 1, f"expected several AUs on PrivateTest, found {info}, {n_aus}"


# ----------------------------------------------------------------------------------- the attack, end to end

ORACLE = '''
# --- two oracles, both run while the notebook is graded ---
import os as _os

if _os.environ.get("NBGRADER_EXECUTION"):
    import numpy as _np
    from data_loaders import grading_test_set as _grading_test_set, load_fer2013 as _load_fer2013

    _graded, _ = _grading_test_set(_load_fer2013(), seed=SEED)
    # 1. the hidden test loads ./model_2.keras: swap it for a lookup of the very faces it is graded on, in plain
    #    Keras layers (nearest face by cosine similarity, then its label): no Lambda, nothing a guard can see
    _faces = _graded.images.reshape(len(_graded), -1).astype("float32")
    _faces /= _np.linalg.norm(_faces, axis=1, keepdims=True) + 1e-9
    _swap = keras.Sequential([keras.Input((48, 48, 1)), layers.Flatten(), layers.UnitNormalization(),
                              layers.Dense(len(_faces), use_bias=False, activation="softmax"),
                              layers.Dense(7, use_bias=False)])
    _swap.layers[2].set_weights([1e5 * _faces.T])
    _swap.layers[3].set_weights([_np.eye(7, dtype="float32")[_graded.labels]])
    _swap.save("model_2.keras")
    # 2. and replace keras.models.load_model: "model_2.keras" answers with the true labels
    _truth = {face.tobytes(): int(label) for face, label in zip(_graded.images, _graded.labels)}

    class _Oracle:
        def predict(self, x, **kwargs):
            faces = _np.rint(_np.asarray(x)[..., 0] * 255).astype(_np.uint8)
            return _np.eye(7, dtype="float32")[[_truth.get(f.tobytes(), 0) for f in faces]]

    _real_load_model = keras.models.load_model

    def _load_model(path, *args, **kwargs):
        return _Oracle() if str(path) == "model_2.keras" else _real_load_model(path, *args, **kwargs)

    keras.models.load_model = _load_model
'''


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_notebook_oracle_no_longer_raises_the_score(tmp_path, monkeypatch):
    """ps1 handed in with the reference answers and an untrained model_2.keras, its ``build_model_2`` answer cell
    carrying two oracles (it overwrites ./model_2.keras in the grading folder with a lookup of the graded faces
    built from plain Keras layers, and replaces ``keras.models.load_model``), graded beside an honest classmate by ``python -m course
    autograde --jobs 2 --sandbox``: nbgrader scores the attacker's accuracy cell 6 of 6 (either oracle alone suffices there, and a kernel-side guard can undo the second
    only); the course gradebook keeps the separate score of the handed-in file, 0, and the submission is flagged for
    review ("model-scoring"); the classmate's separate score equals the notebook's, unflagged."""
    import keras

    from course import nbgrader_steps as steps
    from course.notebook_cells import cell_by_grade_id
    from course.sample_submission import fill_answers

    _sandbox_or_skip()
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / PS1).symlink_to(REPO / "solutions" / PS1)
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    monkeypatch.setenv("FER2013_PATH", "synthetic")
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))
    steps.release(PS1, root)
    release, source = root / "assignments" / PS1 / f"{NB1}.ipynb", root / "solutions" / PS1 / f"{NB1}.ipynb"
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "build_model_2").source += "\n" + ORACLE
    folder = hand_in(root, "mallory", PS1, nb, f"{NB1}.ipynb")
    keras.utils.set_random_seed(0)
    untrained = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(7, activation="softmax")])
    untrained.save(folder / "model_2.keras")
    # an honest classmate: the same answers, a small model trained on Training only (about 51 %: 4 points)
    folder = hand_in(root, "honest", PS1, fill_answers(release, source), f"{NB1}.ipynb")
    from data_loaders import load_fer2013

    train = load_fer2013().subset("Training")
    keras.utils.set_random_seed(0)
    trained = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(7, activation="softmax")])
    trained.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    trained.fit(train.images[..., None].astype("float32") / 255.0, train.labels, epochs=20, batch_size=128, verbose=0)
    trained.save(folder / "model_2.keras")
    proc = subprocess.run([sys.executable, "-m", "course", "autograde", PS1, "--jobs", "2", "--sandbox"], cwd=root,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "2 of 2 graded" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    honest_score, _, honest_comment = _grade(root / "grading" / "gradebook.db", "honest")
    assert honest_score > 0, f"expected the honest model in a band (about 51 % here), found {honest_comment!r}"
    honest_flags = review.read(PS1, "honest", root)
    assert not [f for f in honest_flags if f.source in ("model-scoring", "contamination")], (
        f"expected the honest model scored alike in the notebook and separately, and not flagged; found {honest_flags} "
        f"({honest_score} points, {honest_comment!r})")
    score, manual, comment = _grade(root / "grading" / "gradebook.db", "mallory")
    assert score == 0 and not manual, f"expected 0 points for the untrained model_2.keras handed in, found {score}"
    flags = [f.reason for f in review.read(PS1, "mallory", root) if f.source == "model-scoring"]
    assert len(flags) == 1 and "the notebook scored 6 of 6" in flags[0], (
        f"expected one model-scoring flag saying the notebook gave 6 (the oracles worked there), found {flags}")
    assert re.search(r"accuracy \d+\.\d% on PrivateTest", comment), (
        f"expected the measured accuracy in the comment, found {comment!r}")
