"""Instructor command line: ``python -m course {demo,release,evaluate,bundle}``."""

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
    p.add_argument("--usage", default=None,
                   help="rows to evaluate on (default: PrivateTest when the file has it, else PublicTest)")
    p.add_argument("--input-size", type=int, default=48, help="the model's input side in pixels (peer: 64)")
    p.add_argument("--scale", choices=["unit", "symmetric", "raw"], default="unit",
                   help="input scaling the model expects: unit [0, 1] (kit models), symmetric [-1, 1] "
                        "(the mini-Xception peer) or raw 0-255")
    p.add_argument("--flip-tta", action="store_true",
                   help="average each prediction with that of the mirrored face (test-time augmentation)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a report")

    p = sub.add_parser("bundle", help="write the student bundle: release notebooks, the packages they import, an "
                                      "install file; no solutions, no instructor tooling")
    p.add_argument("--out", default="dist/expression-lab-student.zip",
                   help="a new folder, or a path ending in .zip (default: dist/expression-lab-student.zip)")

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
            result = evaluate_model(args.model, data, usage, args.input_size, args.scale,
                                    flip_tta=args.flip_tta)
            print(json.dumps(result.to_dict(), indent=2) if args.json else result.report())
        elif args.command == "bundle":
            from .bundle import build_bundle
            print(f"student bundle written: {build_bundle(args.out)}")
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
