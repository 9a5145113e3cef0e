"""`python -m locker` runs the CLI."""

import sys

from locker.cli import main

sys.exit(main())
