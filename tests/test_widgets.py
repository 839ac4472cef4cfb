"""widgets: the figures carry the right data, and the interactive bars update through the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from data_loaders import EMOTIONS
from widgets import (
    PredictionBars,
    plot_confusion_matrix,
    plot_emotion_prediction,
    plot_sample_grid,
    plot_training_curves,
)


def test_prediction_bars_highlight_the_predicted_class():
    pred = np.array([[0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1]])
    fig = plot_emotion_prediction(pred, true_label=4)
    bar = fig.data[0]
    assert list(bar.x) == list(EMOTIONS) and np.allclose(bar.y, pred[0])
    colours = list(bar.marker.color)
    assert colours[3] != colours[0] and len(set(colours)) == 2, "only the predicted class is highlighted"
    assert list(bar.marker.line.width)[4] > 0 and list(bar.marker.line.width)[3] == 0, "the true class is outlined"
    assert fig.layout.title.text == "Predicted: Happy (50%) · true: Sad"


@pytest.mark.parametrize("bad", [np.ones(6) / 6, np.ones((2, 7)) / 7, np.array([np.nan] * 7)])
def test_prediction_bars_reject_wrong_input(bad):
    with pytest.raises(ValueError):
        plot_emotion_prediction(bad)


def test_interactive_prediction_bars_follow_the_slider():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(7), 4)
    widget = PredictionBars(images, probs, labels=np.array([0, 1, 2, 3]))
    widget.slider.value = 2  # what dragging the slider in the browser does, through the kernel
    assert np.allclose(widget.bars_figure.data[0].y, probs[2])
    assert np.array_equal(np.asarray(widget.image_figure.data[0].z), images[2][::-1])
    assert widget.bars_figure.layout.title.text.endswith("true: Fear")
    assert widget.slider.max == 3


def test_interactive_prediction_bars_check_lengths():
    with pytest.raises(ValueError, match="probabilities"):
        PredictionBars(np.zeros((3, 48, 48), np.uint8), np.ones((2, 7)) / 7)


def test_prediction_bars_name_a_bad_row_or_label_up_front():
    """Regressions: NaN past row 0 showed "(nan%)" on the slider, label -1 read as "true: Neutral", label 9
    failed inside the slider's callback, and plot_emotion_prediction(true_label=7) raised an IndexError."""
    images, probs = np.zeros((3, 48, 48), np.uint8), np.full((3, 7), 1 / 7)
    broken = probs.copy()
    broken[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"probabilities row 2 has NaN or infinite values"):
        PredictionBars(images, broken)
    with pytest.raises(ValueError, match=r"labels entry 1 is 9: expected a class code 0-6 \(-1: unlabelled\)"):
        PredictionBars(images, probs, labels=[0, 9, 1])
    with pytest.raises(ValueError, match=r"true_label entry 0 is 7"):
        plot_emotion_prediction(probs[0], true_label=7)
    widget = PredictionBars(images, probs, labels=[-1, 3, 6])  # -1: an unlabelled face, as Kaggle's test.csv
    assert "true" not in widget.bars_figure.layout.title.text, widget.bars_figure.layout.title.text
    assert max(widget.bars_figure.data[0].marker.line.width) == 0, "expected no class outlined for an unlabelled face"


def test_training_curves_from_a_history_dict_or_object():
    logs = {
        "loss": [1.5, 1.2, 1.0],
        "val_loss": [1.6, 1.3, 1.2],
        "accuracy": [0.3, 0.45, 0.5],
        "val_accuracy": [0.28, 0.4, 0.47],
    }

    class History:  # what model.fit returns
        history = logs

    for source in (logs, History()):
        fig = plot_training_curves(source)
        by_name = {t.name: t for t in fig.data}
        assert set(by_name) == set(logs)
        assert list(by_name["val_accuracy"].y) == logs["val_accuracy"]
        assert list(by_name["loss"].x) == [1, 2, 3]


def test_training_curves_need_a_loss():
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_training_curves({"accuracy": [0.1]})


def test_confusion_matrix_counts_and_shares():
    y_true = [0, 0, 0, 3, 3, 6]
    y_pred = [0, 0, 3, 3, 3, 0]
    fig = plot_confusion_matrix(y_true, y_pred)
    heat = fig.data[0]
    counts = np.asarray(heat.customdata)
    assert counts.shape == (7, 7) and counts[0, 0] == 2 and counts[0, 3] == 1 and counts[6, 0] == 1
    assert np.isclose(np.asarray(heat.z)[0, 0], 2 / 3), "rows are normalised to each class's share"
    assert "66.7%" in fig.layout.title.text


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"y_true entry 1 is 7: expected a class code 0-6"):
        plot_confusion_matrix([0, 7], [0, 1])
    # probabilities passed for labels: the old int cast truncated them all to class 0 and drew a confident matrix
    with pytest.raises(ValueError, match=r"y_pred entry 0 is 0\.6"):
        plot_confusion_matrix([0, 1], np.array([0.6, 0.4]))
    # integral floats (labels that went through a float array) are still class codes
    assert np.asarray(plot_confusion_matrix(np.array([0.0, 3.0]), [0, 3]).data[0].customdata).trace() == 2


def test_sample_grid_shows_faces_of_each_class_in_its_row():
    images = np.stack([np.full((48, 48), 10 * k, np.uint8) for k in range(21)])
    labels = np.arange(21) % 7
    fig = plot_sample_grid(images, labels, per_class=2)
    indices = fig.layout.meta["indices"]
    assert len(indices) == 7
    for row, picks in enumerate(indices):
        assert all(labels[i] == row for i in picks), f"row {EMOTIONS[row]} shows another class"
    mosaic = np.asarray(fig.data[0].z)
    first = indices[3][0]
    assert (mosaic[3 * 50 : 3 * 50 + 48, 0:48] == images[first]).all(), "the face is drawn in its cell"
    assert list(fig.layout.yaxis.ticktext) == list(EMOTIONS)
