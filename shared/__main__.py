"""``python -m shared <command>``: the operator command line (see ``shared.cli``)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
