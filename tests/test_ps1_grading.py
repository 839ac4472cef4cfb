"""ps1's test cells (public and hidden parts) against correct answers spelled differently: no false zeros.

Each case runs the very test cell of the solution notebook (hidden tests included) on another correct answer
and expects it to pass; wrong answers must still fail with a message that says what was expected and found.
Regression: the model_1 test required ``Conv2D(activation="relu")`` and failed ``Conv2D`` + ``layers.ReLU()``.
Regression: wrong answers that passed the public part and failed only the hidden tests (negative pixels
accepted, a second, vertical flip, a 6×6 pool of the same output shape) now fail the public part.
"""

from __future__ import annotations

import ast
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO
from course.feedback import without_hidden_regions
from course.notebook_cells import cells_by_grade_id

PS1 = REPO / "solutions" / "ps1_fer2013_cnn" / "fer2013_cnn.ipynb"
CELLS = cells_by_grade_id(PS1)


def _source(gid):
    return "".join(CELLS[gid]["source"])


def _run_test(gid, answer: str, *, public_only=False, **names):
    """Define ``answer`` (a student's cell), then run test cell ``gid`` with its hidden tests (only its public part,
    what the student sees, if ``public_only``)."""
    import keras
    from keras import layers

    rng = np.random.default_rng(0)
    ns = {
        "np": np,
        "keras": keras,
        "layers": layers,
        "test_set": SimpleNamespace(images=rng.integers(0, 256, (8, 48, 48)).astype(np.uint8)),
        "x_test": rng.random((8, 48, 48, 1)).astype("float32"),
        **names,
    }
    exec(compile(answer, "answer", "exec"), ns)  # noqa: S102 (test fixtures written here)
    source = without_hidden_regions(_source(gid)) if public_only else _source(gid)
    exec(compile(source, gid, "exec"), ns)  # noqa: S102 (our own solution notebook)
    return ns


MODEL_1_VARIANTS = {
    "ReLU layers": """
def build_model_1():
    inputs = keras.Input(shape=(48, 48, 1))
    x = layers.Conv2D(64, 5)(inputs)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(5, 2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024)(x)
    x = layers.ReLU()(x)
    x = layers.Dense(7)(x)
    outputs = layers.Softmax()(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    return model
""",
    "Activation layers, Sequential, loss function": """
def build_model_1():
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(64, (5, 5), padding="valid"),
                              layers.Activation("relu"), layers.MaxPooling2D(pool_size=5, strides=2),
                              layers.Flatten(), layers.Dense(1024), layers.Activation("relu"),
                              layers.Dense(7), layers.Activation("softmax")])
    model.compile(optimizer="adam", loss=keras.losses.categorical_crossentropy, metrics=["accuracy"])
    return model
""",
}


@pytest.mark.parametrize("variant", sorted(MODEL_1_VARIANTS))
def test_model_1_test_accepts_the_same_network_spelled_differently(variant):
    _run_test("test_model_1", MODEL_1_VARIANTS[variant])


@pytest.mark.parametrize(
    "change, expected",
    [
        ("layers.Conv2D(64, 5)(inputs)", "expected activations relu"),  # no ReLU after the convolution
        ('layers.Conv2D(64, 5, padding="same", activation="relu")(inputs)', "expected"),
    ],
)
def test_model_1_test_still_fails_a_wrong_network(change, expected):
    wrong = MODEL_1_VARIANTS["ReLU layers"].replace("layers.Conv2D(64, 5)(inputs)\n    x = layers.ReLU()(x)", change)
    with pytest.raises(AssertionError, match=expected):
        _run_test("test_model_1", wrong)


def test_parse_pixels_and_preprocess_tests_accept_other_correct_answers():
    _run_test(
        "test_parse_pixels",
        """
import re
def parse_pixels(pixels):
    if not re.fullmatch(r"\\s*\\d+(\\s+\\d+){2303}\\s*", pixels):
        raise ValueError("expected 2304 integers")
    values = [int(v) for v in pixels.split()]
    if max(values) > 255:
        raise ValueError("expected values 0-255")
    return np.array(values, dtype=np.uint8).reshape(48, 48)
""",
    )
    _run_test(
        "test_preprocess",
        """
def preprocess(images):
    return np.expand_dims(images.astype("float32") * (1 / 255), -1)
""",
    )


def test_augmentation_test_accepts_other_settings_and_fails_a_vertical_flip():
    answer = """
def make_augmentation():
    return keras.Sequential([layers.RandomFlip(mode="horizontal"), layers.RandomTranslation(0.05, 0.08),
                             layers.RandomRotation(0.05), layers.RandomZoom(0.1)])
"""
    _run_test("test_augmentation", answer)
    with pytest.raises(AssertionError, match="expected faces flipped horizontally only"):
        _run_test("test_augmentation", answer.replace('mode="horizontal"', 'mode="horizontal_and_vertical"'))


# Wrong answers that passed the public part of their test cell and failed only the hidden tests.
NEGATIVE_PIXELS_ACCEPTED = """
def parse_pixels(pixels):
    values = np.array(pixels.split(), dtype=int)  # "1.5" raises ValueError, "-1" does not
    if values.size != 2304 or values.max() > 255:
        raise ValueError("expected 2304 integers of at most 255")
    return values.astype(np.uint8).reshape(48, 48)
"""

SECOND_FLIP_VERTICAL = """
def make_augmentation():
    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomFlip("vertical"),
                             layers.RandomRotation(0.05), layers.RandomTranslation(0.05, 0.05)])
"""

POOL_6_SAME_SHAPE = MODEL_1_VARIANTS["ReLU layers"].replace("MaxPooling2D(5, 2)", "MaxPooling2D(6, strides=2)")


@pytest.mark.parametrize(
    "gid, answer, expected",
    [
        ("test_parse_pixels", NEGATIVE_PIXELS_ACCEPTED, "expected a ValueError for a string with a value below 0"),
        ("test_augmentation", SECOND_FLIP_VERTICAL, re.escape("horizontal'), found modes ['horizontal', 'vertical']")),
        (
            "test_model_1",
            POOL_6_SAME_SHAPE,
            re.escape("expected pool 5×5 with strides 2, found (6, 6) with strides (2"),
        ),
    ],
    ids=["negative-pixels", "second-flip-vertical", "pool-6-same-shape"],
)
def test_a_wrong_answer_fails_the_public_part_with_a_reason(gid, answer, expected):
    with pytest.raises(AssertionError, match=expected):
        _run_test(gid, answer, public_only=True)


def test_the_wrong_parse_pixels_accepts_only_negative_values():
    """The fixture above is wrong only there: every other bad string of the public part raises ValueError."""
    ns = {"np": np}
    exec(NEGATIVE_PIXELS_ACCEPTED, ns)  # noqa: S102
    for bad in ("1 2 3", " ".join(["256"] * 2304), " ".join(["1.5"] * 2304)):
        with pytest.raises(ValueError):
            ns["parse_pixels"](bad)
    wrapped = ns["parse_pixels"](" ".join(["-1"] * 2304))
    assert wrapped.max() == 255, f"expected -1 accepted and wrapped to 255, found a maximum of {wrapped.max()}"


def test_the_accuracy_scale():
    source = _source("test_model_2_accuracy")
    public = source.split("### BEGIN HIDDEN TESTS")[0]
    definitions = public[: public.index('if Path("model_2.keras")')]
    ns = {"np": np}
    exec(compile(definitions, "bands", "exec"), ns)  # noqa: S102
    points = ns["accuracy_points"]
    assert [points(a) for a in (0.0, 0.439, 0.44, 0.499, 0.50, 0.559, 0.56, 0.9)] == [0, 0, 2, 2, 4, 4, 6, 6]
    assert CELLS["test_model_2_accuracy"]["metadata"]["nbgrader"]["points"] == 6
    assert source.rstrip().endswith("_points\n### END HIDDEN TESTS".rstrip()), (
        "the graded cell's last value is its partial credit (nbgrader reads a numeric execute_result)"
    )


def _test_cells():
    return {
        gid: _source(gid)
        for gid, c in CELLS.items()
        if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
    }


def test_every_test_cell_has_a_public_check():
    for gid, source in _test_cells().items():
        public = source.split("### BEGIN HIDDEN TESTS")[0]
        body = ast.parse(public).body
        assert body, f"{gid}: the public part is only comments; expected at least one visible check"
        calls = [n for n in ast.walk(ast.parse(public)) if isinstance(n, (ast.Assert, ast.Call))]
        assert calls, f"{gid}: expected the public part to check something, found no assert or call"


def test_every_assert_says_what_was_expected_and_found():
    for gid, source in _test_cells().items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assert):
                message = ast.unparse(node.msg) if node.msg is not None else ""
                assert re.search("expected", message, re.IGNORECASE), (
                    f"{gid}: assert without 'expected': {ast.unparse(node)}"
                )
                assert re.search("found", message, re.IGNORECASE) or "{" in message, (
                    f"{gid}: assert message names no finding: {ast.unparse(node)}"
                )


def test_one_model_1_figure_everywhere():
    text = PS1.read_text()
    assert "44.0 %" in text
    for stale in ("41–43 %", "≈ 43 %", "44.02", "40-44 %", "40–45 %"):
        assert stale not in text, f"expected model_1 quoted as 44.0 % everywhere, found {stale!r}"


def test_facs_table_and_model_answers_agree():
    facs = next(
        text
        for text in ("".join(c["source"]) for c in json.loads(PS1.read_text())["cells"])
        if text.startswith("## 1. Background")
    )
    for fact in ("EMFACS", "iMotions", "AU24", "AU25", "AU10", "Disgust | 9 + 15 + 16", "Anger | 4 + 5 + 7 + 23"):
        assert fact in facs, f"expected {fact!r} in the FACS section"
    for gid in ("q_imbalance", "q_errors"):
        answer = _source(gid)
        assert "AU4-like" not in answer and "Disgust's AU4" not in answer and "Anger's AU9" not in answer, gid
        assert "Rubric" in answer, f"{gid}: expected a grader's rubric in the solution cell"
    for gid in ("q_facs", "q_model_2"):
        assert "Rubric" in _source(gid), f"{gid}: expected a grader's rubric in the solution cell"
