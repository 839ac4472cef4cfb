"""Every supported FER2013 format has train / validation / test sets, and ps1's locked cells work on each.

Regression: ps1's locked data cell and its graded accuracy test used ``subset("PublicTest")``, which raises on the
image folders (``train/``, ``test/`` → Usage ``Test``) and on Kaggle's ``train.csv`` alone: every student got 0.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, pixels_string, write_fer_csv
from course.notebook_cells import sources_by_grade_id
from data_loaders import EMOTIONS, fer2013_splits, grading_test_set, load_fer2013
from data_loaders.fer2013 import TRAINING_HOLDOUT

PS1 = REPO / "solutions" / "ps1_fer2013_cnn" / "fer2013_cnn.ipynb"
PER_CLASS = {"Training": 20, "PublicTest": 3, "PrivateTest": 3}


def _faces(n_per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(7), n_per_class)
    return rng.integers(0, 256, size=(len(labels), 48, 48), dtype=np.uint8), labels


def write_format(kind: str, folder):
    """A tiny FER2013 copy in one of the supported formats; returns the path to give the loader."""
    if kind == "fer2013.csv":
        parts = [(*_faces(n, k), u) for k, (u, n) in enumerate(PER_CLASS.items())]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        usages = [u for p in parts for u in [p[2]] * len(p[1])]
        return write_fer_csv(folder / "fer2013.csv", images, labels, usages)
    if kind == "train.csv":
        images, labels = _faces(PER_CLASS["Training"], 0)
        path = folder / "train.csv"
        path.write_text(
            "emotion,pixels\n" + "\n".join(f"{lab},{pixels_string(img)}" for img, lab in zip(images, labels))
        )
        return path
    if kind == "image folders":
        for split, n in (("train", PER_CLASS["Training"]), ("test", 4)):
            images, labels = _faces(n, len(split))
            for k, (img, lab) in enumerate(zip(images, labels)):
                sub = folder / "mirror" / split / EMOTIONS[lab].lower()
                sub.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(sub / f"{k:03d}.png")
        return folder / "mirror"
    raise ValueError(kind)


FORMATS = ["fer2013.csv", "image folders", "train.csv"]
TEST_NAME = {"fer2013.csv": "PublicTest", "image folders": "Test", "train.csv": TRAINING_HOLDOUT}
GRADED_ON = {"fer2013.csv": "PrivateTest", "image folders": "Test", "train.csv": TRAINING_HOLDOUT}


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_has_disjoint_stratified_sets(tmp_path, kind):
    data = load_fer2013(write_format(kind, tmp_path))
    splits = fer2013_splits(data, seed=6835)
    assert splits.test_name == TEST_NAME[kind]
    assert len(splits.train) and len(splits.validation) and len(splits.test)
    assert set(splits.train.usage) == set(splits.validation.usage) == {"Training"}

    def rows(d):
        return {img.tobytes() for img in d.images}

    assert not rows(splits.train) & rows(splits.validation), "validation rows must not be trained on"
    assert not rows(splits.test) & (rows(splits.train) | rows(splits.validation)), "test rows must be unseen"
    assert len(rows(splits.train) | rows(splits.validation) | rows(splits.test)) >= len(data.subset("Training"))
    assert set(splits.validation.labels) == set(range(7)), "the validation split is stratified: every class"
    assert "PrivateTest" not in set(splits.test.usage), "PrivateTest is kept for grading"
    if kind != "fer2013.csv":
        assert "no PublicTest" in splits.note, "the banner says PublicTest is absent and which fallback is used"
    again = fer2013_splits(load_fer2013(write_format(kind, tmp_path)), seed=6835)
    assert np.array_equal(again.test.images, splits.test.images), "same data and seed: same split"


@pytest.mark.parametrize("kind", FORMATS)
def test_the_graded_faces_are_privatetest_else_the_test_split(tmp_path, kind):
    data = load_fer2013(write_format(kind, tmp_path))
    faces, name = grading_test_set(data, seed=6835)
    assert name == GRADED_ON[kind]
    if kind != "fer2013.csv":
        assert np.array_equal(faces.images, fer2013_splits(data, seed=6835).test.images), (
            "without PrivateTest the grade uses the same faces the student's test split held out"
        )


def test_unlabelled_test_csv_alone_is_a_clear_error(tmp_path):
    images, _ = _faces(2, 0)
    path = tmp_path / "test.csv"
    path.write_text("pixels\n" + "\n".join(pixels_string(i) for i in images))
    with pytest.raises(ValueError, match="no labelled Training rows"):
        fer2013_splits(load_fer2013(path))


# ------------------------------------------------------------------- ps1's locked cells on every format


def _cells(*grade_ids):
    cells = sources_by_grade_id(PS1)
    return [(gid, cells[gid]) for gid in grade_ids]


@pytest.fixture
def grading_mode(monkeypatch, tmp_path):
    """Run cells as nbgrader does (NBGRADER_EXECUTION set) in tmp_path; undo the config cell's global silencing."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        yield
    logging.disable(logging.NOTSET)


def _run(cells, namespace):
    for gid, source in cells:
        exec(compile(source, f"ps1#{gid}", "exec"), namespace)  # noqa: S102 (our own solution notebook)
    return namespace


@pytest.mark.parametrize("kind", FORMATS)
def test_ps1_locked_cells_and_graded_accuracy_test_work_on_every_format(
    tmp_path, monkeypatch, grading_mode, capsys, kind
):
    import shutil

    import keras

    from course.run_record import read_run_record

    monkeypatch.setenv("FER2013_PATH", str(write_format(kind, tmp_path)))
    ns = _run(
        _cells("config", "imports", "load_data", "preprocess", "prepare_arrays"), {"display": lambda *a, **k: None}
    )
    assert len(ns["x_train"]) and len(ns["x_test"]) and len(ns["x_val"])
    assert ns["TEST_NAME"] == TEST_NAME[kind]

    # trained models stand-ins that always answer "Happy": the cells after training must run on every format
    inputs = keras.Input((48, 48, 1))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(
        7,
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([0, 0, 0, 9, 0, 0, 0]),
    )(flat)
    happy = keras.Model(inputs, outputs)
    happy.save(ns["MODEL_DIR"] / "model_2.keras")
    ns.update(
        model_1=happy,
        model_2=happy,
        epochs_2=1,
        seconds_2=1.0,
        MODEL_2_BATCH_SIZE=128,
        history_2=type("History", (), {"history": {"loss": [1.9], "val_accuracy": [0.2]}})(),
    )
    _run(_cells("test_once", "student_run", "confusion_matrix"), ns)
    grading_run = read_run_record(ns["MODEL_DIR"] / "model_2.keras")
    assert grading_run["test"]["usage"] == TEST_NAME[kind]

    with pytest.raises(AssertionError, match="expected model_2.keras handed in beside the notebook, found none"):
        _run(_cells("test_model_2_accuracy"), ns)  # nothing handed in: 0 points, and it says why

    # the student's submission: that model and its record; the graded cell must grade it, not crash
    shutil.copy(ns["MODEL_DIR"] / "model_2.keras", "model_2.keras")
    shutil.copy(ns["MODEL_DIR"] / "model_2.run.json", "model_2.run.json")
    ns["accuracy_points"] = None  # defined by the graded cell itself, never taken from the student's namespace
    capsys.readouterr()
    with pytest.raises(AssertionError, match=r"found .*% on " + GRADED_ON[kind]):
        _run(_cells("test_model_2_accuracy"), ns)  # 1/7 of the faces: below every band, 0 points, and says so
    printed = capsys.readouterr().out
    assert "run record check: reproduced within ±2 points" in printed, printed
