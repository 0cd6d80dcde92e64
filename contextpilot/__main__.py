"""``python -m contextpilot``: see ``contextpilot.cli``."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a doctest collector imports this module
    sys.exit(main())
