"""One runner for every benchmark: ``python -m benchmarks [--quick] [section ...]``.

Each section measures in one process, in interleaved rounds, and prints medians
with the ratio to plain PF code measured in the same run.
"""

import argparse
import importlib

SECTIONS = ("graph", "enumeration", "rebuild", "checkpoint", "imports")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args()
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    for section in args.sections or SECTIONS:
        module = importlib.import_module(f"benchmarks.{section}")
        print(f"\n===== {section} =====")
        module.main(["--rounds", "3"] if args.quick else [])


if __name__ == "__main__":
    main()
