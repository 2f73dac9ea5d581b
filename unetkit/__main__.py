"""`python -m unetkit` runs the command-line interface."""

import sys

from unetkit.cli import main

sys.exit(main())
