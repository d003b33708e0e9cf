"""`python -m btro_sdk` is the `btro` command."""

import sys

from .cli import main

sys.exit(main())
