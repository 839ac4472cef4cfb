"""Video: synthetic clips and their ground truth, clip resolution, decoding errors, per-frame analysis, the
annotated MP4 and the timeline widget."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pandas as pd
import pytest

from course.video_analysis import COLUMNS, analyze_video, smile_score, write_annotated_video
from data_loaders.emotions import EMOTIONS
from data_loaders.synthetic.clips import GROUND_TRUTH_COLUMNS, SMILE_AU12, render_clip, write_clip
from data_loaders.video import (
    ShortVideoWarning,
    VideoError,
    iter_frames,
    load_ground_truth,
    read_frame,
    video_info,
    video_path,
)
from widgets import VideoTimeline


class BrightnessModel:
    """A stand-in for a Keras model: 'Happy' rises with the crop's mean grey level (no TensorFlow needed)."""

    input_shape = (None, 48, 48, 1)

    def __init__(self):
        self.calls = []

    def predict(self, x, verbose=0, batch_size=None):
        self.calls.append(len(x))
        level = x.reshape(len(x), -1).mean(axis=1)
        p = np.full((len(x), 7), 0.1)
        p[:, 3] = level
        return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 10 s clip at 6 fps, 200×160: smiles, other expressions, and a stretch with no face."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=10, fps=6, size=(200, 160), seed=3)


def test_a_clip_has_onset_apex_offset_smiles_and_frames_without_a_face(clip):
    frames, truth = render_clip(seconds=10, fps=6, size=(200, 160), seed=3)
    assert frames.shape == (60, 160, 200) and frames.dtype == np.uint8
    assert tuple(truth.columns) == GROUND_TRUTH_COLUMNS and list(truth.frame) == list(range(60))
    assert (truth.face_present == 0).any() and (truth.face_present == 1).any()
    assert (truth.smile == (truth.AU12 >= SMILE_AU12).astype(int)).all()
    assert truth.smile.sum() > 3
    happy = truth.AU12.to_numpy()
    peak = int(np.argmax(happy))
    assert happy[peak] > 0.3 and happy[:peak].min() == 0 and happy[peak:].min() == 0, "AU12 rises and falls"
    assert (truth.emotion[truth.face_present == 0] == "").all()
    assert (truth.face_w[truth.face_present == 0] == -1).all() and (truth.face_w[truth.face_present == 1] > 60).all()
    again = render_clip(seconds=10, fps=6, size=(200, 160), seed=3)
    assert np.array_equal(again[0], frames) and again[1].equals(truth), "same seed, same clip"
    video, csv = clip
    assert csv.read_bytes() == pd.read_csv(csv, keep_default_na=False).to_csv(index=False).encode()
    info = video_info(video)
    assert (info.width, info.height, info.frame_count) == (200, 160, 60) and info.fps == pytest.approx(6)
    decoded = read_frame(video, 30, grey=True)
    assert np.abs(decoded.astype(int) - frames[30]).mean() < 8, "the MP4 holds the rendered frames"


def test_ground_truth_is_read_beside_the_clip(clip, tmp_path):
    video, _ = clip
    truth = load_ground_truth(video)
    assert truth.emotion.isin([*EMOTIONS, ""]).all() and truth.frame.dtype == np.int64
    assert load_ground_truth(tmp_path / "other.mp4") is None
    (tmp_path / "bad.csv").write_text("time_s\n0.0\n")
    with pytest.raises(VideoError, match="bad.csv.*'frame' column"):
        load_ground_truth(tmp_path / "bad.mp4")
    # regressions: pandas' own errors (naming no file), a frame of 2.7 read as 2, a smile of "yes" kept as text
    for text, message in [
        ("", "bad.csv: not a readable ground-truth csv"),
        ("frame,smile\n0,1\n1,0,7,8\n", "bad.csv: not a readable ground-truth csv"),
        ("frame,smile\n0,1\nx,0\n", "bad.csv:3: frame 'x' is not a frame number"),
        ("frame,smile\n0,1\n2.7,0\n", "bad.csv:3: frame 2.7 is not a frame number"),
        ("frame,smile\n-1,1\n", "bad.csv:2: frame -1 is not a frame number"),
        ("frame,smile\n0,1\n1,yes\n", "bad.csv:3: smile 'yes' is not 0 or 1 (or empty)"),
    ]:
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(VideoError, match=re.escape(message)):
            load_ground_truth(tmp_path / "bad.mp4")
    (tmp_path / "bad.csv").write_text("frame,smile\n0,1\n1,\n")  # an unlabelled frame is NaN, not an error
    assert load_ground_truth(tmp_path / "bad.mp4").smile.isna().tolist() == [False, True]


def test_clip_resolution_order(clip, tmp_path, monkeypatch):
    video, _ = clip
    assert video_path(video) == video
    assert video_path(video.parent) == video  # a folder: its first clip
    monkeypatch.setenv("VIDEO_PATH", str(video))
    assert video_path() == video
    monkeypatch.setenv("VIDEO_PATH", str(tmp_path / "missing.mp4"))
    with pytest.raises(FileNotFoundError, match="missing.mp4.*VIDEO_PATH"):
        video_path()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no clip"):
        video_path(tmp_path / "empty")


def test_unreadable_files_get_an_error_naming_them(clip, tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        list(iter_frames(tmp_path / "notes.mp4"))
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoError, match="empty.avi: empty file"):
        video_info(tmp_path / "empty.avi")
    with pytest.raises(VideoError, match="nothing.mov: no such file"):
        analyze_video(tmp_path / "nothing.mov", BrightnessModel())
    video, _ = clip
    cut = tmp_path / "cut.mp4"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) of OpenCV's MP4 is at the end: unreadable
    with pytest.raises(VideoError, match="cut.mp4"):
        list(iter_frames(cut))


def test_a_clip_whose_header_counts_more_frames_keeps_every_decoded_frame(clip, tmp_path):
    """Real encoders write frame counts the stream does not hold (98 reported, 95 decoded): the decoded frames
    are analysed, a warning gives both counts and ``df.attrs`` keeps them; a truncated file the same."""
    video, _ = clip
    whole = tmp_path / "whole.avi"  # Motion JPEG in AVI: the header's count is read first, frames one by one
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 6.0, (160, 120), True)
    for _, _, rgb in iter_frames(video):
        writer.write(cv2.resize(rgb, (160, 120))[..., ::-1])
    writer.release()
    data = whole.read_bytes()
    short = tmp_path / "short.avi"
    short.write_bytes(data[: int(len(data) * 0.6)])
    reported = video_info(short).frame_count
    with pytest.warns(ShortVideoWarning, match=rf"frames decoded, {reported} reported") as caught:
        decoded = [index for index, _, _ in iter_frames(short)]
    assert 0 < len(decoded) < reported and decoded == list(range(len(decoded))), (
        f"expected the first frames up to the cut of {reported}, found {decoded}"
    )
    assert (caught[0].message.decoded, caught[0].message.reported) == (len(decoded), reported), (
        f"expected the warning to carry both counts, found {vars(caught[0].message)}"
    )
    with pytest.warns(ShortVideoWarning):
        df = analyze_video(short, BrightnessModel(), progress=False)
    assert sorted(set(df.frame)) == decoded, f"expected a row for each decoded frame, found {sorted(set(df.frame))}"
    assert (df.attrs["frame_count"], df.attrs["frames_decoded"]) == (reported, len(decoded)), (
        f"expected both counts in df.attrs, found {df.attrs}"
    )


def test_a_clip_whose_header_counts_fewer_frames_is_decoded_to_its_end(tmp_path):
    """The container's count is never the truth, in either direction: a header that undercounts (30 frames,
    20 reported) must not cut the clip's tail (regression: iter_frames stopped at the reported count)."""
    import struct

    path = tmp_path / "under.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48), True)
    for k in range(30):
        writer.write(np.full((48, 64, 3), 8 * k, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    avih, strh = data.index(b"avih") + 8, data.index(b"strh") + 8  # each chunk's data, after its id and size
    data[avih + 16 : avih + 20] = struct.pack("<I", 20)  # AVIMAINHEADER.dwTotalFrames
    data[strh + 32 : strh + 36] = struct.pack("<I", 20)  # AVISTREAMHEADER.dwLength
    path.write_bytes(bytes(data))
    reported = video_info(path).frame_count
    decoded = [index for index, _, _ in iter_frames(path)]
    assert decoded == list(range(30)), f"expected all 30 frames (the header reports {reported}), found {decoded}"
    assert [index for index, _, _ in iter_frames(path, stop=25)] == list(range(25)), "expected stop=25 to stop there"
    assert list(iter_frames(path, stop=0)) == [], "expected stop=0 to yield no frame"
    with pytest.raises(ValueError, match="stop must be ≥ 0"):
        next(iter_frames(path, stop=-1))
    with pytest.warns(UserWarning, match="no face found in any of the 30 analysed frames"):  # flat grey frames
        df = analyze_video(path, BrightnessModel(), progress=False)
    assert sorted(set(df.frame)) == decoded and df.attrs["frames_decoded"] == 30, (
        f"expected a row for each of the 30 frames, found {sorted(set(df.frame))} and {df.attrs['frames_decoded']}"
    )


def test_analyze_video_gives_one_row_per_frame_and_marks_frames_without_a_face(clip):
    video, _ = clip
    truth = load_ground_truth(video)
    model = BrightnessModel()
    df = analyze_video(video, model, batch_size=16, progress=False)
    assert tuple(df.columns) == COLUMNS
    assert list(df.frame) == list(range(60)), "one row per frame (one face each here), none dropped"
    assert df.time_s.iloc[6] == pytest.approx(1.0)
    merged = df.merge(truth, on="frame")
    assert (merged.face == (merged.face_present == 1)).mean() >= 0.95, "faces found where the clip has one"
    no_face = df[~df.face]
    assert len(no_face) and no_face[list(EMOTIONS)].isna().all().all() and (no_face.label == "").all()
    assert no_face.x.isna().all() and df[df.face].x.notna().all()
    faces = df[df.face]
    assert np.allclose(faces[list(EMOTIONS)].sum(axis=1), 1) and np.allclose(faces.smile, faces.Happy)
    assert max(model.calls) <= 16, "predictions are batched by batch_size"
    assert df.attrs["fps"] == pytest.approx(6) and df.attrs["every"] == 1
    every = analyze_video(video, model, every=4, progress=False)
    assert list(every.frame) == list(range(0, 60, 4))
    assert np.allclose(smile_score(faces[list(EMOTIONS)].to_numpy()), faces.Happy)


def test_a_clip_without_a_face_warns_and_keeps_every_frame(tmp_path):
    path = tmp_path / "wall.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120), True)
    for i in range(12):
        writer.write(np.full((120, 160, 3), 100 + i, np.uint8))
    writer.release()
    with pytest.warns(UserWarning, match="no face found in any of the 12 analysed frames"):
        df = analyze_video(path, BrightnessModel(), progress=False)
    assert len(df) == 12 and not df.face.any()


def test_a_model_with_the_wrong_shape_is_refused(clip):
    class Colour(BrightnessModel):
        input_shape = (None, 48, 48, 3)

    with pytest.raises(ValueError, match="grey square images"):
        analyze_video(clip[0], Colour(), progress=False)


def test_the_annotated_video_has_boxes_and_bars(clip, tmp_path):
    video, _ = clip
    df = analyze_video(video, BrightnessModel(), every=2, progress=False)
    out = write_annotated_video(df, video, tmp_path / "annotated.mp4", progress=False)
    info = video_info(out)
    assert (info.width, info.height, info.frame_count) == (200 + 170, 160, 60)
    row = df[df.face].iloc[0]
    frame = read_frame(out, int(row.frame))
    x, y = int(row.x), int(row.y)
    edge = frame[y + 5 : y + int(row.h) - 5, x]
    assert (edge[:, 0] > 150).mean() > 0.8 and (edge[:, 1] < 120).mean() > 0.8, "a red box edge"
    with pytest.raises(ValueError, match="lacks the columns"):
        write_annotated_video(df[["frame"]], video, tmp_path / "x.mp4")


def test_the_timeline_scrubber_shows_the_frame_its_box_and_bars(clip):
    video, _ = clip
    df = analyze_video(video, BrightnessModel(), progress=False)
    timeline = VideoTimeline(df, lambda i: read_frame(video, i), extra={"smoothed": df.smile.rolling(3).mean()})
    assert len(timeline.timeline.data) >= 7
    first_source = timeline.frame_figure.data[0].source
    face_row = int(np.flatnonzero(df.face)[-1])
    timeline.slider.value = face_row
    assert timeline.frame_figure.data[0].source != first_source
    assert len(timeline.frame_figure.layout.shapes) == 1
    assert np.allclose(timeline.bars_figure.data[0].y, df.loc[face_row, list(EMOTIONS)].to_numpy(float))
    assert timeline.timeline.layout.shapes[0].x0 == pytest.approx(df.time_s[face_row])
    no_face_row = int(np.flatnonzero(~df.face)[0])
    timeline.slider.value = no_face_row
    assert len(timeline.frame_figure.layout.shapes) == 0 and "no face" in timeline.bars_figure.layout.title.text
    with pytest.raises(ValueError, match="missing columns"):
        VideoTimeline(df[["frame", "time_s"]], lambda i: None)


def test_a_clip_that_opens_but_decodes_no_frame_is_an_error_naming_it(tmp_path):
    """Only when nothing decodes does analysis stop: the header says 12 frames, the stream ends before the first."""
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 6.0, (160, 120), True)
    for i in range(12):
        writer.write(np.full((120, 160, 3), 20 * i, np.uint8))
    writer.release()
    data = whole.read_bytes()
    empty = tmp_path / "headeronly.avi"
    empty.write_bytes(data[: data.find(b"movi") + 8])  # the header and the start of the (empty) frame list
    assert video_info(empty).frame_count == 12, f"expected the header's 12 frames, found {video_info(empty)}"
    with pytest.raises(VideoError, match="headeronly.avi: no frame could be decoded"):
        analyze_video(empty, BrightnessModel(), progress=False)


def test_without_a_face_in_view_the_vote_runs_once_a_second_and_the_screen_between(tmp_path, monkeypatch):
    import course.video_analysis as video_analysis

    path = tmp_path / "wall30.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120), True)
    for i in range(40):
        writer.write(np.full((120, 160, 3), 100 + i, np.uint8))
    writer.release()
    calls = []
    vote, screen = video_analysis.detect_faces, video_analysis.screen_faces
    monkeypatch.setattr(video_analysis, "detect_faces", lambda *a, **k: calls.append("vote") or vote(*a, **k))
    monkeypatch.setattr(video_analysis, "screen_faces", lambda *a, **k: calls.append("screen") or screen(*a, **k))
    for options, votes, screens in (({}, 2, 38), ({"screen": False}, 2, 0), ({"search_every": 1}, 40, 0)):
        calls.clear()
        with pytest.warns(UserWarning, match="no face found"):
            df = analyze_video(path, BrightnessModel(), progress=False, **options)
        found = (calls.count("vote"), calls.count("screen"))
        assert found == (votes, screens), (
            f"{options or 'default'}: expected {votes} whole-frame votes and {screens} screens of 40 frames at 30 fps, "
            f"found {found} (attrs {df.attrs})"
        )
        assert len(df) == 40 and not df.face.any(), f"expected a row per frame, found {len(df)}"
    assert df.attrs["search_every"] == 1
    with pytest.raises(ValueError, match="search_every must be"):
        analyze_video(path, BrightnessModel(), progress=False, search_every=0)
    with pytest.raises(ValueError, match="method must be"):
        analyze_video(path, BrightnessModel(), progress=False, method="dlib")
