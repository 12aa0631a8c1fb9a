"""`python -m bench.ws_relay`: see the package docstring."""
from __future__ import annotations

import sys

# Imported by its package name, so the DIRECT helper processes (spawned) find the same code.
from bench.ws_relay.main import main

sys.exit(main())
