"""``python -m beyondsgd`` runs the command-line interface."""

import sys

from beyondsgd.cli import main

sys.exit(main())
