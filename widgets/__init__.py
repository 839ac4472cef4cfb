"""Expression Lab widgets and plots. They take arrays and Keras models, never load data themselves."""

from .confusion_matrix import plot_confusion_matrix
from .prediction_bars import PredictionBars, plot_emotion_prediction
from .sample_grid import plot_sample_grid
from .training_curves import plot_training_curves

__all__ = ["PredictionBars", "plot_confusion_matrix", "plot_emotion_prediction", "plot_sample_grid",
           "plot_training_curves"]
