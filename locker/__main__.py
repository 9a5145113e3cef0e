"""`python -m locker` runs the CLI."""

import sys

from locker.cli.main import main

sys.exit(main())
