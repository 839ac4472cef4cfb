"""Data command line.

``python -m data_loaders check PATH``: counts per class per Usage, and every bad row.
``python -m data_loaders synth --out data/synthetic [--subjects N --images N --seed S]``: write synthetic FACS
faces as ``fer2013.csv``, ``faces.py`` and ``faces.npz``.
"""

from __future__ import annotations

import argparse
import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return 0 (clean), 1 (bad rows found) or 2 (unreadable or missing input)."""
    parser = argparse.ArgumentParser(prog="python -m data_loaders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a FER2013 file or folder and print counts and bad rows")
    check.add_argument("path", nargs="?", help="file or folder (default: FER2013_PATH, then data/fer2013/)")
    synth = sub.add_parser("synth", help="write synthetic FACS faces in the FER2013 and iPhone X formats")
    synth.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    synth.add_argument("--subjects", type=int, default=None, help="3D subjects, 7 expressions each (default 50)")
    synth.add_argument("--images", type=int, default=None, help="48×48 images (default 10000)")
    synth.add_argument("--seed", type=int, default=None, help="random seed (default 0); same seed, same bytes")
    args = parser.parse_args(argv)
    if args.command == "synth":
        return _synth(args)

    from .fer2013 import FER2013FormatError, load_fer2013

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bad rows are printed below, in full
            data = load_fer2013(args.path, on_bad_rows="skip", use_cache=False)
    except (FileNotFoundError, FER2013FormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(data.description)
    print()
    print(data.counts().to_string())
    print()
    print(f"{len(data.bad_rows)} bad rows" + (":" if data.bad_rows else ""))
    for bad in data.bad_rows:
        print(f"  {bad}")
    return 1 if data.bad_rows else 0


def _synth(args) -> int:
    from . import synthetic

    try:
        paths = synthetic.generate(
            args.out,
            subjects=synthetic.DEFAULT_SUBJECTS if args.subjects is None else args.subjects,
            images=synthetic.DEFAULT_IMAGES if args.images is None else args.images,
            seed=synthetic.DEFAULT_SEED if args.seed is None else args.seed,
            verbose=True,
        )
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
