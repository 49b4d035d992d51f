"""``python -m sc2deploy`` runs the command-line interface (used on remote devices)."""

import sys

from sc2deploy.cli import main

sys.exit(main())
