"""Fair grading in assignments 2 and 3: the test cells (public and hidden parts) run against answers that are
correct but written differently from the model solution, and against wrong ones.

Each correct-but-different answer below scored 0 on some cell before the tests were rewritten: a batch norm in
ps2's new head ("the base changed"), a head larger than 20 % of a small model_2 (the fallback the grader
loads), a softmax as its own layer, a 3D CNN built from nested blocks. The cells are taken from the solution
notebooks (hidden tests included) and executed in a namespace holding what the notebook would have defined.
"""

from __future__ import annotations

import ast
import json
import types

import numpy as np
import pytest

from conftest import REPO, SHARED_CACHE
from course.feedback import without_hidden_regions
from course.notebook_cells import cell_by_grade_id, sources_by_grade_id

PS2 = REPO / "solutions" / "ps2_personal_transfer" / "personal_transfer.ipynb"
PS3 = REPO / "solutions" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb"


def _cells(path):
    return sources_by_grade_id(path)


def _run(path, grade_ids, ns, public_only=False):
    """Execute the cells ``grade_ids`` of ``path`` in ``ns`` (only their public part if ``public_only``)."""
    cells = _cells(path)
    for gid in grade_ids:
        source = without_hidden_regions(cells[gid]) if public_only else cells[gid]
        exec(compile(source, f"{path.name}#{gid}", "exec"), ns)  # noqa: S102 (our own notebooks)
    return ns


# ---------------------------------------------------------------- ps2


@pytest.fixture
def ps2_namespace():
    """What the notebook defines before the model_3 tests: a small trained model_2 (fewer weights than any
    reasonable head), 7 training and 7 test photos. A new model_2 for each test: answers freeze its layers."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = keras.Input((48, 48, 1))
    h = layers.Conv2D(8, 3, use_bias=False)(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    model_2 = keras.Model(inputs, layers.Dense(7, activation="softmax")(h))
    model_2.compile("adam", "sparse_categorical_crossentropy")
    model_2.fit(rng.random((28, 48, 48, 1)).astype("float32"), np.tile(np.arange(7), 4), epochs=1, verbose=0)
    ns = {
        "np": np,
        "keras": keras,
        "layers": layers,
        "model_2": model_2,
        "x_train": rng.random((7, 48, 48, 1)).astype("float32"),
        "y_train": np.arange(7),
        "x_test": rng.random((7, 48, 48, 1)).astype("float32"),
        "y_test": np.arange(7),
    }
    return _run(PS2, ["make_heavy_augmentation"], ns)


def _with_answer(ns, code):
    fresh = dict(ns)
    exec(code, fresh)  # noqa: S102
    return fresh


HEAD_WITH_BATCH_NORM_AND_HIDDEN_LAYER = """
def build_model_3(model_2, augmentation):
    base = keras.Model(model_2.inputs, model_2.layers[-2].output)
    base.trainable = False
    inputs = keras.Input((48, 48, 1))
    x = base(augmentation(inputs), training=False)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(256, activation="relu")(x)
    outputs = layers.Dense(7, activation="softmax")(layers.Dropout(0.3)(x))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""

FROZEN_LAYER_BY_LAYER_WITH_SOFTMAX_LAYER = """
def build_model_3(model_2, augmentation):
    for layer in model_2.layers[:-1]:
        layer.trainable = False
    model = keras.Sequential([keras.Input((48, 48, 1)), augmentation, *model_2.layers[1:-1],
                              layers.Dense(7), layers.Softmax()])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    return model
"""

COPIED_BASE = """
def build_model_3(model_2, augmentation):
    clone = keras.models.clone_model(model_2)
    clone.set_weights(model_2.get_weights())
    base = keras.Model(clone.inputs, clone.layers[-2].output)
    base.trainable = False
    inputs = keras.Input((48, 48, 1))
    outputs = layers.Dense(7, activation="softmax")(base(augmentation(inputs), training=False))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model
"""

UNFROZEN_BASE = """
def build_model_3(model_2, augmentation):
    base = keras.Model(model_2.inputs, model_2.layers[-2].output)
    inputs = keras.Input((48, 48, 1))
    outputs = layers.Dense(7, activation="softmax")(base(augmentation(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model
"""

NEW_RANDOM_BASE = """
def build_model_3(model_2, augmentation):
    clone = keras.models.clone_model(model_2)
    base = keras.Model(clone.inputs, clone.layers[-2].output)
    base.trainable = False
    inputs = keras.Input((48, 48, 1))
    outputs = layers.Dense(7, activation="softmax")(base(augmentation(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model
"""


@pytest.mark.slow  # each case trains small models: seconds
@pytest.mark.parametrize(
    "answer",
    [HEAD_WITH_BATCH_NORM_AND_HIDDEN_LAYER, FROZEN_LAYER_BY_LAYER_WITH_SOFTMAX_LAYER, COPIED_BASE],
    ids=["batch-norm-and-hidden-layer-head", "frozen-layer-by-layer-softmax-layer", "copied-base"],
)
def test_correct_but_different_model_3_passes_every_test(ps2_namespace, answer):
    ns = _with_answer(ps2_namespace, answer)
    before = [w.numpy() for w in ns["model_2"].weights]
    _run(PS2, ["test_model_3", "test_model_3_hidden"], ns)
    for a, w in zip(before, ns["model_2"].weights):  # the cells may not change model_2 for later cells
        np.testing.assert_array_equal(a, w.numpy())


@pytest.mark.parametrize(
    "answer, message",
    [
        (UNFROZEN_BASE, "expected model_2's base to be frozen"),
        (NEW_RANDOM_BASE, "expected model_3 to hold all of model_2's"),
    ],
    ids=["unfrozen-base", "new-random-base"],
)
def test_wrong_model_3_fails_the_public_test_with_a_reason(ps2_namespace, answer, message):
    ns = _with_answer(ps2_namespace, answer)
    with pytest.raises(AssertionError, match=message):
        _run(PS2, ["test_model_3"], ns)


def test_brightness_outside_the_unit_range_fails_the_augmentation_test(ps2_namespace):
    ns = _with_answer(
        ps2_namespace,
        """
def make_heavy_augmentation():
    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.04), layers.RandomZoom(0.15),
                             layers.RandomContrast(0.3), layers.RandomBrightness(0.2)])
""",
    )
    with pytest.raises(AssertionError, match="value_range"):
        _run(PS2, ["test_heavy_augmentation"], ns)
    _run(PS2, ["make_heavy_augmentation", "test_heavy_augmentation"], ns)  # the solution's passes


# ---------------------------------------------------------------- ps3

HISTOGRAM_VOXELIZE = """
def voxelize(points, grid=24, box=None):
    pts = np.asarray(points, dtype=float)
    single = pts.ndim == 2
    out = []
    for p in (pts[None] if single else pts):
        low, high = (p.min(0), p.max(0)) if box is None else (np.asarray(box[0], float), np.asarray(box[1], float))
        extent = np.where(high > low, high - low, 1.0)
        cell = np.clip(np.floor((p - low) / extent * grid), 0, grid - 1).astype(int)
        v = np.zeros((grid,) * 3, np.int32)
        np.add.at(v, tuple(cell.T), 1)
        out.append(v)
    return out[0] if single else np.stack(out)
"""

LOSES_THE_UPPER_EDGE = """
def voxelize(points, grid=24, box=None):
    pts = np.asarray(points, dtype=float)
    single = pts.ndim == 2
    out = []
    for p in (pts[None] if single else pts):
        low, high = (p.min(0), p.max(0)) if box is None else (np.asarray(box[0], float), np.asarray(box[1], float))
        cell = np.floor((p - low) / np.where(high > low, high - low, 1.0) * grid).astype(int)
        cell = cell[(cell < grid).all(axis=1)]  # the points on the upper edge are lost
        v = np.zeros((grid,) * 3, np.int32)
        np.add.at(v, tuple(cell.T), 1)
        out.append(v)
    return out[0] if single else np.stack(out)
"""


NESTED_BLOCKS_MODEL_4 = """
def build_model_4(grid=24):
    block = lambda n: keras.Sequential([layers.Conv3D(n, 3, padding="same", activation="relu"), layers.MaxPool3D(2)])
    model = keras.Sequential([keras.Input((grid, grid, grid, 1)), block(8), block(16),
                              layers.GlobalAveragePooling3D(), layers.Dense(7), layers.Activation("softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


@pytest.fixture
def ps3_namespace(tmp_path, monkeypatch):
    import keras
    from keras import layers

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    clouds = types.SimpleNamespace(points=rng.normal(size=(3, 120, 3)).astype("float32"))
    return {
        "np": np,
        "keras": keras,
        "layers": layers,
        "GRID": 24,
        "clouds": clouds,
        "MODEL_DIR": tmp_path,
        "x_all": rng.random((2, 24, 24, 24, 1)).astype("float32"),
        "x_test": rng.random((3, 24, 24, 24, 1)).astype("float32"),
    }


def test_a_correct_but_different_voxelize_passes_public_and_hidden_tests(ps3_namespace):
    _run(PS3, ["test_voxelize", "test_voxelize_hidden"], _with_answer(ps3_namespace, HISTOGRAM_VOXELIZE))


def test_a_voxelize_losing_the_upper_edge_fails_the_public_test(ps3_namespace):
    with pytest.raises(AssertionError, match="expected the 8 corners"):
        _run(PS3, ["test_voxelize"], _with_answer(ps3_namespace, LOSES_THE_UPPER_EDGE))


def test_a_3d_cnn_of_nested_blocks_passes_the_model_tests(ps3_namespace, tmp_path):
    ns = _with_answer(ps3_namespace, NESTED_BLOCKS_MODEL_4)
    _run(PS3, ["test_model_4"], ns)
    model = ns["build_model_4"](24)
    model.save(tmp_path / "model_4.keras")  # MODEL_DIR and the handed-in file are the same here
    _run(PS3, ["test_model_4_saved"], ns)


def test_a_subject_split_with_group_shuffle_split_passes(ps3_namespace):
    _run(
        PS3,
        ["test_subject_split"],
        _with_answer(
            ps3_namespace,
            """
from sklearn.model_selection import GroupShuffleSplit
def subject_split(subjects, test_fraction=0.2, seed=0):
    train, test = next(GroupShuffleSplit(1, test_size=test_fraction, random_state=seed).split(subjects, groups=subjects))
    mask = np.zeros(len(subjects), bool)
    mask[test] = True
    return ~mask, mask
""",
        ),
    )


# Right otherwise (boolean masks, no subject in both), but 10 % of 3 subjects rounds to no test subject.
NO_MINIMUM_TEST_SUBJECT = """
def subject_split(subjects, test_fraction=0.2, seed=0):
    subjects = np.asarray(subjects)
    ids = np.unique(subjects)
    n_test = round(len(ids) * test_fraction)
    test = np.isin(subjects, np.random.default_rng(seed).choice(ids, n_test, replace=False))
    return ~test, test
"""


def test_a_subject_split_with_no_test_subject_fails_the_public_test(ps3_namespace):
    ns = _with_answer(ps3_namespace, NO_MINIMUM_TEST_SUBJECT)
    with pytest.raises(
        AssertionError, match=r"expected 1 or 2 of 3 subjects in test with test_fraction=0\.1, found 0$"
    ):
        _run(PS3, ["test_subject_split"], ns, public_only=True)


def test_the_released_extra_credit_cell_does_not_end_run_all_with_an_error(capsys):
    release = REPO / "assignments" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb"
    _run(release, ["extra_credit_code"], {})
    assert "Extra credit not attempted" in capsys.readouterr().out


# ---------------------------------------------------------------- both notebooks


@pytest.mark.parametrize("path", [PS2, PS3], ids=["ps2", "ps3"])
def test_every_test_cell_checks_in_public_and_every_assert_says_what_was_expected(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("grade"):
            continue
        source = "".join(cell["source"])
        public = source.split("### BEGIN HIDDEN TESTS")[0]
        asserts = [n for n in ast.walk(ast.parse(public)) if isinstance(n, ast.Assert)]
        assert asserts, f"{meta['grade_id']}: no public check before the hidden tests"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assert):
                message = ast.unparse(node.msg) if node.msg is not None else ""
                assert "expected" in message, (
                    f"{meta['grade_id']} line {node.lineno}: the assert says no expected value"
                )


@pytest.mark.parametrize("path", [PS2, PS3], ids=["ps2", "ps3"])
def test_manual_answers_carry_a_rubric_and_the_base_is_the_stated_total(path):
    nb = json.loads(path.read_text())
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "markdown" and meta.get("grade"):
            assert "Rubric" in "".join(cell["source"]) or meta["points"] == 0, f"{meta['grade_id']}: no rubric"
    total = sum(m["points"] for m in graded)
    assert f"**{total:g} points**" in "".join(nb["cells"][0]["source"])
    assert "Before you submit" in "".join(nb["cells"][-1]["source"])


def test_model_answers_follow_the_facs_table():
    """No model answer gives Disgust's AU9 to Anger or Anger's AU4 to Disgust (Ekman & Friesen's prototypes)."""
    for path in (PS2, PS3):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown" or not cell["metadata"].get("nbgrader", {}).get("solution"):
                continue
            answer = "".join(cell["source"]).split("*Rubric")[0]
            for wrong in ("both lower and draw the brows", "Anger (AU9", "Disgust (AU4", "AU4 for Disgust"):
                assert wrong not in answer


@pytest.mark.slow
def test_opted_in_test_crops_are_handed_in_and_rechecked_in_grading_mode(tmp_path):
    """A student who sets HAND_IN_TEST_CROPS = True hands in 48×48 crops (never photos) in model_3.run.json; the
    grading re-run shows them and re-predicts the submitted model_3.keras on them. The re-run's own record,
    written in grading mode, carries no crop. Both runs use the synthetic data and the shared cache, so the
    fallback model_2 the graded course trained is reused."""
    import base64
    import io

    import nbformat
    from PIL import Image

    from course.notebook_run import execute_notebook
    from course.run_record import read_run_record
    from course.sample_submission import fill_answers

    release = REPO / "assignments" / "ps2_personal_transfer" / "personal_transfer.ipynb"
    nb = fill_answers(release, PS2)
    flag = next(c for c in nb.cells if c.source.startswith("HAND_IN_TEST_CROPS"))
    flag.source = "HAND_IN_TEST_CROPS = True\n"
    path = tmp_path / release.name
    nbformat.write(nb, path)
    data = {"FER2013_PATH": "synthetic", "EXPRESSION_LAB_CACHE": str(SHARED_CACHE)}
    execute_notebook(path, env={"EXPRESSION_LAB_QUICK": "1", **data}, progress=False)
    record = read_run_record(tmp_path / "model_3.keras")
    crops = [Image.open(io.BytesIO(base64.b64decode(p["crop_png"]))) for p in record["test_photos"]]
    assert len(crops) == 7 and all(c.size == (48, 48) and c.mode == "L" for c in crops)

    graded = execute_notebook(path, env={"NBGRADER_EXECUTION": "autograde", **data}, progress=False)
    shown = cell_by_grade_id(graded, "student_run")
    text = "".join(o.get("text", "") for o in shown.outputs)
    assert "reproduced within" in text, text
    assert "crop_png" not in (tmp_path / "autograde_outputs" / "model_3.run.json").read_text()
