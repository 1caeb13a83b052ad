"""`python -m cinegen.cli`: what the tests and a checkout without the entry point run."""

import sys

from cinegen.cli import main

sys.exit(main())
