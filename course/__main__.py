"""Instructor command line: ``python -m course COMMAND``, one command per instructor task (``--help`` lists them).

The commands: demo, release, evaluate, autograde, feedback, sandbox, report, bundle, serve, export.

Each subcommand is one function below (``demo(args)``, ``release(args)``, …) and one ``add_…`` function that
declares its arguments and examples; ``main`` only dispatches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_ASSIGNMENT_HELP = "assignment id, e.g. ps3_iphonex_3dcnn"


def _course_root(explicit: str | None = None) -> Path:
    """The course folder: ``explicit`` when given, else the current folder when it holds ``nbgrader_config.py``,
    else the kit's checkout."""
    from . import REPO_ROOT

    if explicit:
        return Path(explicit)
    return Path.cwd() if (Path.cwd() / "nbgrader_config.py").is_file() else REPO_ROOT


# ---------------------------------------------------------------------------------------------------- subcommands
def demo(args) -> int:
    from .demo import run_demo

    run_demo(args.assignment, quick=not args.full)
    return 0


def release(args) -> int:
    from .nbgrader_steps import release as release_assignments

    for path in release_assignments(args.assignment):
        print(f"released {path}")
    return 0


def evaluate(args) -> int:
    from data_loaders import load_fer2013

    from .evaluate import evaluate_model

    data = load_fer2013(args.data)
    usage = args.usage or ("PrivateTest" if "PrivateTest" in data.usages else "PublicTest")
    result = evaluate_model(args.model, data, usage, args.input_size, args.scale, flip_tta=args.flip_tta)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


def autograde(args) -> int:
    from .autograde import DEFAULT_TIMEOUT, autograde_class, summary_table

    results = autograde_class(
        args.assignment,
        args.student,
        jobs=args.jobs,
        sandbox=args.sandbox,
        root=_course_root(),
        timeout=args.timeout or DEFAULT_TIMEOUT,
    )
    print(summary_table(results))
    print(f"summary: grading/autograde/{args.assignment}.csv")
    return 0 if all(r.status == "graded" for r in results) else 1


def feedback(args) -> int:
    from .nbgrader_steps import feedback_class

    for folder in feedback_class(args.assignment, args.student, release=args.release, root=_course_root()):
        print(f"feedback: {folder}")
    if args.release:
        print("released through nbgrader's exchange")
    return 0


def sandbox(args) -> int:
    from . import sandbox as grading_sandbox

    if args.action == "install":
        folder = grading_sandbox.install_kernel_spec(args.prefix)
        print(f"installed the kernelspec {grading_sandbox.KERNEL_NAME} in {folder}")
    else:
        grading_sandbox.check_sandbox()
        print("the grading sandbox starts here (bubblewrap, no network, resource limits)")
    return 0


def report(args) -> int:
    from .report import write_report

    root = _course_root(args.course_dir)
    class_report, paths = write_report(args.assignment, args.out, root, all_assignments=args.all_assignments)
    print(class_report.summary())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def bundle(args) -> int:
    from .bundle import build_bundle

    print(f"student bundle written: {build_bundle(args.out)}")
    return 0


def serve(args) -> int:
    from .serve import serve as serve_model

    serve_model(args.model, host=args.host, port=args.port, access_log=args.access_log)
    return 0


def export(args) -> int:
    from .export import export_model

    result = export_model(args.model, args.format, out=args.out, overwrite=args.overwrite, data=args.data)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
    return 0


# ------------------------------------------------------------------------------------------------------ arguments
def add_demo(p) -> None:
    p.add_argument("--assignment", default=None, help="one assignment id (default: every assignment)")
    p.add_argument("--full", action="store_true", help="the sample student trains for the full time, not a quick run")


def add_release(p) -> None:
    p.add_argument("assignment", nargs="?", help="one assignment id (default: all)")


def add_evaluate(p) -> None:
    p.add_argument("model", help="a .keras (or legacy .h5/.hdf5) model file")
    p.add_argument("--data", help="FER2013 file or folder (default: FER2013_PATH, then data/fer2013/)")
    p.add_argument(
        "--usage", default=None, help="rows to evaluate on (default: PrivateTest when the file has it, else PublicTest)"
    )
    p.add_argument("--input-size", type=int, default=48, help="the model's input side in pixels (peer: 64)")
    p.add_argument(
        "--scale",
        choices=["unit", "symmetric", "raw"],
        default="unit",
        help="input scaling the model expects: unit [0, 1] (kit models), symmetric [-1, 1] "
        "(the mini-Xception peer) or raw 0-255",
    )
    p.add_argument(
        "--flip-tta",
        action="store_true",
        help="average each prediction with that of the mirrored face (test-time augmentation)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a report")


def add_autograde(p) -> None:
    p.add_argument("assignment", help=_ASSIGNMENT_HELP)
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="submissions graded at once (default 1; on 2 CPU cores --jobs 2 graded ps3 1.8x faster, 2.2 GB at peak: "
        "benchmarks/README.md; each worker gets at most 6 GiB where control groups allow)",
    )
    p.add_argument(
        "--sandbox",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run student code in the bubblewrap sandbox (default); --no-sandbox grades with your rights",
    )
    p.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one submission may take in all "
        "(default 1800); the cell timeout of nbgrader_config.py still applies per cell",
    )


def add_feedback(p) -> None:
    p.add_argument("assignment", help=_ASSIGNMENT_HELP)
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument(
        "--release",
        action="store_true",
        help="then publish it through nbgrader's exchange "
        "(nbgrader release_feedback); do it only after the last extension's deadline",
    )


def add_sandbox(p) -> None:
    p.add_argument(
        "action",
        choices=["install", "check"],
        help="install: write the kernelspec into this environment; check: start a command in the sandbox",
    )
    p.add_argument("--prefix", default=None, help="install under this prefix (default: this environment)")


def add_report(p) -> None:
    p.add_argument("assignment", help=_ASSIGNMENT_HELP)
    p.add_argument("--out", default=None, help="folder for the report (default: grading/reports/)")
    p.add_argument(
        "--course-dir",
        default=None,
        help="the course folder holding nbgrader_config.py and grading/ (default: the current folder "
        "when it holds nbgrader_config.py, else the kit's checkout)",
    )
    p.add_argument(
        "--all-assignments",
        action="store_true",
        help="the Canvas CSV gets a column for every assignment in the gradebook (canvas_gradebook.csv)",
    )


def add_bundle(p) -> None:
    p.add_argument(
        "--out",
        default="dist/expression-lab-student.zip",
        help="a new folder, or a path ending in .zip (default: dist/expression-lab-student.zip)",
    )


def add_serve(p) -> None:
    p.add_argument("model", help="a .keras model taking grey 48x48 faces (N, 48, 48, 1) in [0, 1], 7 softmax outputs")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; the service has no login)",
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--access-log", action="store_true", help="log one line per request")


def add_export(p) -> None:
    p.add_argument("model", help="a .keras model taking grey square faces (N, S, S, 1), returning class probabilities")
    p.add_argument(
        "--format",
        required=True,
        choices=["onnx", "savedmodel", "tfjs"],
        help="onnx: a .onnx file (onnxruntime, onnxruntime-web in the browser); savedmodel: a folder "
        "(TensorFlow Serving); tfjs: refused here, with the reason",
    )
    p.add_argument(
        "--out", default=None, help="file or folder to write (default: beside the model, model.onnx, model_savedmodel/)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
    p.add_argument(
        "--data",
        default=None,
        help="FER2013 file for the parity check's faces, or 'synthetic' (default: FER2013_PATH, then data/fer2013/, "
        "then the kit's synthetic faces)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a report")


#: ``name: (run, add arguments, one-line help, examples)`` for every subcommand, in the order ``--help`` lists them.
COMMANDS = {
    "demo": (
        demo,
        add_demo,
        "release, sample submission, autograde, feedback, grades; print the scores",
        ["python -m course demo", "python -m course demo --assignment ps1_fer2013_cnn --full"],
    ),
    "release": (
        release,
        add_release,
        "regenerate assignments/ from solutions/ (nbgrader generate_assignment)",
        ["python -m course release", "python -m course release ps4_action_units"],
    ),
    "evaluate": (
        evaluate,
        add_evaluate,
        "evaluate a saved Keras model on a FER2013-format file",
        [
            "python -m course evaluate model_2.keras",
            "python -m course evaluate peer.hdf5 --input-size 64 --scale symmetric --usage PublicTest --json",
        ],
    ),
    "autograde": (
        autograde,
        add_autograde,
        "autograde every submission of an assignment, sandboxed, across cores",
        [
            "python -m course autograde ps1_fer2013_cnn --jobs 4",
            "python -m course autograde ps3_iphonex_3dcnn --student alice --student bob",
        ],
    ),
    "feedback": (
        feedback,
        add_feedback,
        "write (and with --release, publish) the feedback of autograded submissions, "
        "moving links and special files out first",
        ["python -m course feedback ps1_fer2013_cnn", "python -m course feedback ps1_fer2013_cnn --release"],
    ),
    "sandbox": (
        sandbox,
        add_sandbox,
        "install or check the sandboxed grading kernel (expression-lab-sandbox)",
        ["python -m course sandbox install", "python -m course sandbox check"],
    ),
    "report": (
        report,
        add_report,
        "class analytics from the gradebook: one HTML page and a Canvas gradebook CSV",
        ["python -m course report ps1_fer2013_cnn", "python -m course report ps5_faces_in_motion --all-assignments"],
    ),
    "bundle": (
        bundle,
        add_bundle,
        "write the student bundle: release notebooks, the packages they import, an "
        "install file; no solutions, no instructor tooling",
        ["python -m course bundle", "python -m course bundle --out dist/student-folder"],
    ),
    "serve": (
        serve,
        add_serve,
        "serve a model over HTTP: emotions of the faces in a photo or of 48x48 faces, API page at /docs",
        [
            "python -m course serve model_2.keras",
            "python -m course serve model_2.keras --host 127.0.0.1 --port 8080 --access-log",
        ],
    ),
    "export": (
        export,
        add_export,
        "export a model to ONNX or a TensorFlow SavedModel, checked against Keras on faces (max |Δp| ≤ 1e-4) and timed",
        [
            "python -m course export model_2.keras --format onnx",
            "python -m course export model_2.keras --format savedmodel --out serving/model_2/1 --overwrite",
        ],
    ),
}


def parser() -> argparse.ArgumentParser:
    """The command line's parser: one subparser per :data:`COMMANDS` entry, each with its examples."""
    top = argparse.ArgumentParser(
        prog="python -m course",
        description=__doc__.splitlines()[0],
        epilog="examples:\n" + "\n".join(f"  {c[3][0]}" for c in COMMANDS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    for name, (run, add_arguments, help_text, examples) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(p)
        p.set_defaults(run=run)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns its exit status (2, with the message on stderr, for a bad file or value)."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
