from __future__ import annotations

import sys

from pruner.cli import main

sys.exit(main())
