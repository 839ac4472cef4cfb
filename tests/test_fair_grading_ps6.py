"""Fair grading in assignment 6 (explain and compare): wrong answers that passed the public part of a test cell
of the solution notebook, and failed only in its hidden tests (or not at all), now fail a public check that says
why; the reference solution still passes every test cell touched, public and hidden parts.

The cells are taken from the solution notebook by grade_id and executed in a namespace holding what the notebook
would have defined, on tiny inputs (random faces, a small untrained ``model_2``). A wrong answer runs only the
public part of its test cell (the source before ``### BEGIN HIDDEN TESTS``). Each wrong answer is either small
and written for the test or the solution's own cell with one change.

- **build_resnet_style**: ``layers.Add()([x, x])`` (no skip path: the block's convolutions are dropped), and a
  builder that returns the same model, built once, at every call.
- **build_mobilenet_style**: a builder that returns the same model at every call.
- **grad_cam** (``test_grad_cam_model_2``, the cell with the public ``layer="identity"`` check): an answer that
  ignores its ``layer=`` argument and always uses the default layer.
- **slice_metrics**: the accuracy's bootstrap put in the ``macro_f1_low`` / ``macro_f1_high`` columns, and the
  slices sorted as text (``key=str``: ``[10, 9]``). Slices in the order they first appear failed the public test
  already (its string slices come as ``"b"`` before ``"a"``); sorting as text passed public and hidden tests.
- **bootstrap_interval**: a numpy array ``np.percentile(...)`` for the ``(low, high)`` pair is a right answer; the
  public check ``bootstrap_interval(...) == bootstrap_interval(...)`` raised ``ValueError`` on it.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from conftest import REPO
from course.feedback import without_hidden_regions
from course.notebook_cells import sources_by_grade_id

#: The notebook whose cells run (read at each call, so a throwaway run can point it at another version).
PS6 = REPO / "solutions" / "ps6_explain_compare" / "explain_compare.ipynb"
HIDDEN = "### BEGIN HIDDEN TESTS"


def _source(gid, public_only=False):
    source = sources_by_grade_id(PS6)[gid]
    if public_only:
        assert HIDDEN in source, f"expected hidden tests in {gid}, found none"
        source = without_hidden_regions(source)
    return source


def _run(ns, *grade_ids, public_only=False):
    """Execute the cells ``grade_ids`` (only their public part if asked) in ``ns``."""
    for gid in grade_ids:
        exec(compile(_source(gid, public_only), f"{PS6.name}#{gid}", "exec"), ns)  # noqa: S102 (our own notebook)
    return ns


def _answer(ns, code):
    exec(code, ns)  # noqa: S102
    return ns


def _solution_with(gid, old, new):
    """The solution's answer cell ``gid`` with ``old`` (found exactly once) replaced by ``new``."""
    source = _source(gid)
    assert source.count(old) == 1, f"expected {old!r} once in the solution's {gid} cell, found {source.count(old)}"
    return source.replace(old, new)


def _helpers_of(ns, gid):
    """Define the functions of the test cell ``gid`` in ``ns`` without running its checks (later test cells use
    the helpers an earlier one defines)."""
    tree = ast.parse(_source(gid, public_only=True))
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert tree.body, f"expected helper functions in {gid}, found none"
    exec(compile(tree, f"{PS6.name}#{gid} (functions)", "exec"), ns)  # noqa: S102
    return ns


def _small_model_2():
    """An untrained CNN, 48×48 grey -> 7 softmax, with the shape of a model_2: spatial layers ending in a ReLU
    before global average pooling, a Dense softmax last (biases 0, so its predicted class has a map not 0)."""
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1))
    h = layers.MaxPooling2D(2)(layers.Activation("relu")(layers.Conv2D(8, 3, padding="same")(inputs)))
    h = layers.MaxPooling2D(2)(layers.Activation("relu")(layers.Conv2D(16, 3, padding="same")(h)))
    h = layers.Activation("relu")(layers.Conv2D(16, 3, padding="same")(h))  # the last spatial layer: 12×12
    return keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.GlobalAveragePooling2D()(h)))


@pytest.fixture(scope="module")
def _notebook():
    """What the notebook defines before its test cells: its imports and the given networks (``MAX_PARAMETERS``),
    16 training, 24 test and 3 explained random faces, and a small ``model_2``."""
    import keras

    ns = _run({"__name__": "ps6", "SEED": 6835, "print": lambda *a, **k: None}, "imports", "given_networks")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    faces = rng.random((43, 48, 48, 1)).astype("float32")
    ns.update(
        x_train=faces[:16],
        y_train=np.arange(16) % 7,
        x_test=faces[16:40],
        y_test=np.arange(24) % 7,
        x_explain=faces[40:],
        model_2=_small_model_2(),
    )
    return ns


@pytest.fixture
def ns(_notebook):
    import keras

    keras.utils.set_random_seed(0)
    return dict(_notebook)


def _raises(message):
    return pytest.raises(AssertionError, match=re.escape(message))


# ---------------------------------------------------------------- 1.1 build_resnet_style

# The block's convolutions make y, then the typo adds the input to itself: two Add layers, no skip path.
RESNET_ADDING_X_TO_ITSELF = """
def build_resnet_style():
    inputs = keras.Input((48, 48, 1))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    for _ in range(2):
        y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        y = layers.Conv2D(16, 3, padding="same")(y)
        x = layers.Activation("relu")(layers.Add()([x, x]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(7, activation="softmax")(x))
"""

# Two real residual blocks, but the model is built once, when the cell runs.
RESNET_BUILT_ONCE = """
_inputs = keras.Input((48, 48, 1))
_x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(_inputs)
for _ in range(2):
    _y = layers.Conv2D(16, 3, padding="same", activation="relu")(_x)
    _x = layers.Activation("relu")(layers.Add()([layers.Conv2D(16, 3, padding="same")(_y), _x]))
_resnet = keras.Model(_inputs, layers.Dense(7, activation="softmax")(layers.GlobalAveragePooling2D()(_x)))


def build_resnet_style():
    return _resnet
"""


@pytest.mark.slow  # trains the solution's ResNet-style network three steps (about a second)
def test_the_resnet_style_solution_passes_its_whole_test_cell(ns):
    _run(ns, "build_resnet_style", "test_build_resnet_style")
    assert ns["_again"] is not ns["_net"], "expected the test cell to have built two models"


def test_a_resnet_style_adding_its_input_to_itself_fails_the_public_test(ns):
    _answer(ns, RESNET_ADDING_X_TO_ITSELF)
    with _raises("expected at least two Add merges of two different tensors (a skip path), found 0 of the 2"):
        _run(ns, "test_build_resnet_style", public_only=True)


@pytest.mark.slow  # trains a small network three steps
def test_a_resnet_style_built_once_fails_the_public_test(ns):
    _answer(ns, RESNET_BUILT_ONCE)
    with _raises("expected a new model at every call, found the same model twice"):
        _run(ns, "test_build_resnet_style", public_only=True)


# ---------------------------------------------------------------- 1.2 build_mobilenet_style

MOBILENET_BUILT_ONCE = """
_inputs = keras.Input((48, 48, 1))
_x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(_inputs)
for _ in range(2):
    _x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(_x)
    _x = layers.Conv2D(16, 1, activation="relu")(_x)
_mobilenet = keras.Model(_inputs, layers.Dense(7, activation="softmax")(layers.GlobalAveragePooling2D()(_x)))


def build_mobilenet_style():
    return _mobilenet
"""


@pytest.mark.slow  # trains the solution's MobileNet-style network three steps (about a second)
def test_the_mobilenet_style_solution_passes_its_whole_test_cell(ns):
    _helpers_of(ns, "test_build_resnet_style")
    _run(ns, "build_mobilenet_style", "test_build_mobilenet_style")
    assert ns["_again"] is not ns["_net"], "expected the test cell to have built two models"


@pytest.mark.slow  # trains a small network three steps
def test_a_mobilenet_style_built_once_fails_the_public_test(ns):
    _helpers_of(ns, "test_build_resnet_style")
    _answer(ns, MOBILENET_BUILT_ONCE)
    with _raises("expected a new model at every call, found the same model twice"):
        _run(ns, "test_build_mobilenet_style", public_only=True)


# ---------------------------------------------------------------- 2.1 grad_cam


def test_the_grad_cam_solution_passes_both_its_test_cells_whole(ns):
    _run(ns, "grad_cam", "test_grad_cam", "test_grad_cam_model_2")
    assert np.median(ns["_score"]) >= 0.8, f"expected the hidden tests to have run, found {ns['_score']}"


def test_a_grad_cam_ignoring_its_layer_argument_fails_the_public_test(ns):
    _answer(ns, _solution_with("grad_cam", "if layer is None:", "if True:  # layer= ignored: the default always"))
    _run(ns, "test_grad_cam")  # it never passes layer=: the whole cell passes
    with _raises('with layer="identity" (the 48×48 layer before the 4×4 pooling): expected the image divided'):
        _run(ns, "test_grad_cam_model_2", public_only=True)


# ---------------------------------------------------------------- 3.1 bootstrap_interval and 3.2 slice_metrics


def test_the_bootstrap_and_slice_solutions_pass_their_whole_test_cells(ns):
    _run(ns, "bootstrap_interval", "test_bootstrap_interval", "slice_metrics", "test_slice_metrics")
    assert list(ns["_table"].index) == [1, 2, 3], f"expected the hidden tests to have run, found {ns['_table']}"


def test_a_bootstrap_interval_returning_a_numpy_array_passes_its_test_cell(ns):
    _answer(
        ns,
        _solution_with(
            "bootstrap_interval",
            "low, high = np.percentile(values, [2.5, 97.5])\n    return float(low), float(high)",
            "return np.percentile(values, [2.5, 97.5])",
        ),
    )
    interval = ns["bootstrap_interval"](np.arange(20) % 3, np.arange(20) % 2, ns["accuracy_score"], draws=20)
    assert isinstance(interval, np.ndarray), f"expected this answer to return a numpy array, found {type(interval)}"
    _run(ns, "test_bootstrap_interval", public_only=True)  # raised ValueError: an array's == is no bool
    _run(ns, "test_bootstrap_interval")


@pytest.fixture
def slices_ns(ns):
    return _run(ns, "bootstrap_interval")


def test_a_slice_table_with_the_accuracys_interval_for_macro_f1_fails_the_public_test(slices_ns):
    _answer(slices_ns, _solution_with("slice_metrics", '("macro_f1", macro_f1)):', '("macro_f1", accuracy_score)):'))
    with _raises("expected each macro-F1 inside its interval, found (low, macro-F1, high)"):
        _run(slices_ns, "test_slice_metrics", public_only=True)


def test_a_slice_table_sorted_as_text_fails_the_public_test(slices_ns):
    _answer(
        slices_ns,
        _solution_with("slice_metrics", "sorted(set(groups.tolist()))", "sorted(set(groups.tolist()), key=str)"),
    )
    with _raises("expected integer slices in numeric order [9, 10], found [10, 9]"):
        _run(slices_ns, "test_slice_metrics", public_only=True)
