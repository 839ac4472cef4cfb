"""``python -m data_loaders check PATH``: counts per class per Usage, and every bad row."""

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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
