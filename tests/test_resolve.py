"""Shared data resolution (data_loaders/resolve.py): the data folder override and the personal photo folder."""

from __future__ import annotations

import pytest

from conftest import write_fer_csv
from data_loaders import fer2013_path
from data_loaders.personal import personal_path
from data_loaders.resolve import repo_data_dir
from data_loaders.synthetic import standin_photos


def test_expression_lab_data_replaces_the_kit_data_folder(tmp_path, monkeypatch, tiny_faces):
    for variable in ("FER2013_PATH", "PERSONAL_PHOTOS_PATH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("EXPRESSION_LAB_DATA", str(tmp_path))
    assert repo_data_dir() == tmp_path, f"expected {tmp_path}, found {repo_data_dir()}"
    (tmp_path / "fer2013").mkdir()
    images, labels = tiny_faces
    csv = write_fer_csv(tmp_path / "fer2013" / "fer2013.csv", images, labels, ["Training"] * len(labels))
    assert fer2013_path() in (csv, csv.parent), f"expected FER2013 under {tmp_path}, found {fer2013_path()}"
    assert personal_path() == tmp_path / "personal", f"found {personal_path()}"


def test_personal_path_takes_the_variable_a_new_folder_and_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONAL_PHOTOS_PATH", str(tmp_path / "not-yet"))
    assert personal_path() == tmp_path / "not-yet", "a folder the capture widget will create is accepted"
    assert personal_path(tmp_path) == tmp_path, "an explicit path wins over the variable"
    monkeypatch.setenv("PERSONAL_PHOTOS_PATH", "synthetic")
    assert personal_path() == standin_photos(), "'synthetic' means the stand-in photos"


def test_a_missing_explicit_data_path_still_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="FER2013 not found at"):
        fer2013_path(tmp_path / "missing.csv")
