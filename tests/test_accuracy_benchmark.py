"""benchmarks/fer2013_accuracy.py, run as its command line (tests never import ``benchmarks``): a tiny budget on the
synthetic faces trains the notebook's model_2, scores its checkpoints and the final model, reports oneDNN's
instruction-set limit, and writes the JSON where ``--out`` says, leaving the committed results alone. (The model_1
baseline, ``--baseline-epochs N``, saves a 300 MB model: left out here to keep the test short.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, SHARED_CACHE

RESULTS = REPO / "benchmarks" / "results" / "fer2013_accuracy.json"


def _benchmark(*args: str, timeout: int, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m benchmarks.fer2013_accuracy ARGS`` in the repository on the synthetic faces (cached where
    the other tests keep them), with ``env`` added to the environment."""
    environment = {
        **os.environ,
        "FER2013_PATH": "synthetic",
        "EXPRESSION_LAB_CACHE": str(SHARED_CACHE),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.fer2013_accuracy", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_command_line_lists_its_options_and_refuses_an_empty_budget():
    shown = _benchmark("--help", timeout=60)
    assert shown.returncode == 0, f"expected --help to succeed, found exit code {shown.returncode}: {shown.stderr}"
    for option in (
        "--minutes",
        "--checkpoints",
        "--baseline-epochs",
        "--peer",
        "--train-faces",
        "--test-faces",
        "--out",
    ):
        assert option in shown.stdout, f"expected {option} in --help, found:\n{shown.stdout}"
    refused = _benchmark("--minutes", "0", timeout=60)
    assert refused.returncode == 2 and "--minutes must be positive" in refused.stderr, (
        f"expected --minutes 0 refused (exit code 2), found exit code {refused.returncode}: {refused.stderr}"
    )


@pytest.mark.slow  # half a minute on 2 cores: a 5-second budget, host speed, scoring
def test_a_tiny_run_trains_scores_and_reports_without_touching_the_committed_results(tmp_path):
    committed = RESULTS.read_bytes() if RESULTS.is_file() else None
    out = tmp_path / "accuracy.json"
    run = _benchmark(
        *("--minutes", "0.08", "--checkpoints", "0.03", "--train-faces", "256", "--baseline-epochs", "0"),
        *("--test-faces", "200", "--peer", "", "--out", str(out)),
        timeout=600,
        ONEDNN_MAX_CPU_ISA="AVX2",  # the laptop case: float32 with oneDNN limited to AVX2
    )
    assert run.returncode == 0, f"expected the benchmark to succeed, found exit code {run.returncode}:\n{run.stderr}"
    result = json.loads(out.read_text())
    names = [row["model"] for row in result["models"]]
    assert names == ["model_2 (solution notebook)", "model_2 + flip TTA"], (
        f"expected rows for model_2 and model_2 with flip TTA, found {names}"
    )
    assert result["epochs"] > 0 and result["planned_epochs"] >= 1 and result["per_epoch"], (
        f"expected model_2 trained and scored after each epoch, found {result['epochs']} epochs of "
        f"{result['planned_epochs']} planned and per-epoch scores {result['per_epoch']}"
    )
    minutes = [checkpoint["minutes"] for checkpoint in result["checkpoints"]]
    assert len(minutes) == 2 and minutes[0] == 0.03, f"expected a 0.03-minute checkpoint and the end, found {minutes}"
    assert result["test_faces"] == 200, (
        f"expected 200 PublicTest faces scored (--test-faces), found {result['test_faces']}"
    )
    final, model_2 = result["checkpoints"][-1]["accuracy"], result["models"][0]["accuracy"]
    assert final == model_2, f"expected the last checkpoint to be the saved model_2 ({model_2}), found {final}"
    facts = {key: result.get(key) for key in ("onednn_max_cpu_isa", "training_dtype", "inference_dtype")}
    assert facts == {"onednn_max_cpu_isa": "AVX2", "training_dtype": "float32", "inference_dtype": "float32"}, (
        f"expected oneDNN's AVX2 limit reported with float32 training and inference, found {facts}"
    )
    now = RESULTS.read_bytes() if RESULTS.is_file() else None
    assert now == committed, f"expected {RESULTS.name} untouched by a run with --out, found it rewritten"
