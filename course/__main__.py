"""Instructor command line: ``python -m course {demo,release,evaluate,autograde,feedback,sandbox,report,bundle}``."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="release, sample submission, autograde, feedback, grades; print the scores")
    p.add_argument("--assignment", default=None, help="one assignment id (default: every assignment)")
    p.add_argument("--full", action="store_true", help="the sample student trains for the full time, not a quick run")

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/ (nbgrader generate_assignment)")
    p.add_argument("assignment", nargs="?", help="one assignment id (default: all)")

    p = sub.add_parser("evaluate", help="evaluate a saved Keras model on a FER2013-format file")
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

    p = sub.add_parser("autograde", help="autograde every submission of an assignment, sandboxed, across cores")
    p.add_argument("assignment", help="assignment id, e.g. ps3_iphonex_3dcnn")
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="submissions graded at once (default 1; up to one per 2 CPU cores and 4 GB of memory is a good start)",
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

    p = sub.add_parser(
        "feedback",
        help="write (and with --release, publish) the feedback of autograded submissions, "
        "moving links and special files out first",
    )
    p.add_argument("assignment", help="assignment id, e.g. ps3_iphonex_3dcnn")
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument(
        "--release",
        action="store_true",
        help="then publish it through nbgrader's exchange "
        "(nbgrader release_feedback); do it only after the last extension's deadline",
    )

    p = sub.add_parser("sandbox", help="install or check the sandboxed grading kernel (expression-lab-sandbox)")
    p.add_argument(
        "action",
        choices=["install", "check"],
        help="install: write the kernelspec into this environment; check: start a command in the sandbox",
    )
    p.add_argument("--prefix", default=None, help="install under this prefix (default: this environment)")

    p = sub.add_parser("report", help="class analytics from the gradebook: one HTML page and a Canvas gradebook CSV")
    p.add_argument("assignment", help="the assignment id, e.g. ps3_iphonex_3dcnn")
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
    p = sub.add_parser(
        "bundle",
        help="write the student bundle: release notebooks, the packages they import, an "
        "install file; no solutions, no instructor tooling",
    )
    p.add_argument(
        "--out",
        default="dist/expression-lab-student.zip",
        help="a new folder, or a path ending in .zip (default: dist/expression-lab-student.zip)",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args.assignment, quick=not args.full)
        elif args.command == "release":
            from .nbgrader_steps import release

            for path in release(args.assignment):
                print(f"released {path}")
        elif args.command == "evaluate":
            from data_loaders import load_fer2013

            from .evaluate import evaluate_model

            data = load_fer2013(args.data)
            usage = args.usage or ("PrivateTest" if "PrivateTest" in data.usages else "PublicTest")
            result = evaluate_model(args.model, data, usage, args.input_size, args.scale, flip_tta=args.flip_tta)
            print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
        elif args.command == "autograde":
            from pathlib import Path

            from . import REPO_ROOT
            from .autograde import DEFAULT_TIMEOUT, autograde_class, summary_table

            # the course is the folder of nbgrader_config.py: the current one when it has it, else the kit's
            root = Path.cwd() if (Path.cwd() / "nbgrader_config.py").is_file() else REPO_ROOT
            results = autograde_class(
                args.assignment,
                args.student,
                jobs=args.jobs,
                sandbox=args.sandbox,
                root=root,
                timeout=args.timeout or DEFAULT_TIMEOUT,
            )
            print(summary_table(results))
            print(f"summary: grading/autograde/{args.assignment}.csv")
            return 0 if all(r.status == "graded" for r in results) else 1
        elif args.command == "feedback":
            from pathlib import Path

            from . import REPO_ROOT
            from .nbgrader_steps import feedback_class

            root = Path.cwd() if (Path.cwd() / "nbgrader_config.py").is_file() else REPO_ROOT
            for folder in feedback_class(args.assignment, args.student, release=args.release, root=root):
                print(f"feedback: {folder}")
            if args.release:
                print("released through nbgrader's exchange")
        elif args.command == "sandbox":
            from . import sandbox

            if args.action == "install":
                print(f"installed the kernelspec {sandbox.KERNEL_NAME} in {sandbox.install_kernel_spec(args.prefix)}")
            else:
                sandbox.check_sandbox()
                print("the grading sandbox starts here (bubblewrap, no network, resource limits)")
        elif args.command == "report":
            from pathlib import Path

            from . import REPO_ROOT
            from .report import write_report

            cwd = Path.cwd()
            root = (
                Path(args.course_dir)
                if args.course_dir
                else (cwd if (cwd / "nbgrader_config.py").is_file() else REPO_ROOT)
            )
            report, paths = write_report(args.assignment, args.out, root, all_assignments=args.all_assignments)
            print(report.summary())
            for kind, path in paths.items():
                print(f"{kind}: {path}")
        elif args.command == "bundle":
            from .bundle import build_bundle

            print(f"student bundle written: {build_bundle(args.out)}")
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
