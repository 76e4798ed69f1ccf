"""``python -m audits``: the entry point of the application layer (``auditapp.cli``)."""

import sys

from auditapp.cli import main

sys.exit(main())
