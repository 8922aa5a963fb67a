"""One runner for every benchmark: ``python -m benchmarks [--quick] [section ...]``.

Each section measures in one process, in interleaved rounds, and prints medians
with the ratio to plain PF code measured in the same run.
"""

import argparse
import importlib
import sys
import time

from .common import summary

SECTIONS = ("graph", "fresh", "enumeration", "rebuild", "checkpoint", "cli", "tiny_params",
            "imports")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args()
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    sections = args.sections or SECTIONS
    for index, section in enumerate(sections, 1):
        print(f"[{index}/{len(sections)}] {section} ({time.strftime('%H:%M:%S')})",
              file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.{section}")
        print(f"\n===== {section} =====", flush=True)
        module.main(["--rounds", "3"] if args.quick else [])
        sys.stdout.flush()
    return 0 if summary() else 1


if __name__ == "__main__":
    sys.exit(main())
