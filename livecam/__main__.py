"""``python -m livecam``."""

import sys

from livecam.cli import main

sys.exit(main())
