"""Expression Lab widgets and plots. They take arrays and Keras models, never load data themselves."""

from .au_explorer import AUExplorer
from .capture import PhotoCapture
from .confusion_matrix import plot_confusion_matrix
from .data_banner import data_banner
from .gradcam_view import GradCamView
from .live_emotion import LiveEmotion
from .prediction_bars import PredictionBars, plot_emotion_prediction
from .sample_grid import plot_sample_grid
from .training_curves import plot_training_curves
from .video_timeline import VideoTimeline
from .viewer3d import FaceViewer

__all__ = [
    "AUExplorer",
    "FaceViewer",
    "GradCamView",
    "LiveEmotion",
    "PhotoCapture",
    "PredictionBars",
    "VideoTimeline",
    "data_banner",
    "plot_confusion_matrix",
    "plot_emotion_prediction",
    "plot_sample_grid",
    "plot_training_curves",
]
