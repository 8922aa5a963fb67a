"""``python -m nnabla_modules``: the command line of :mod:`nnabla_modules.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
