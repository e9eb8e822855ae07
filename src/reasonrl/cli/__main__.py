"""`python -m reasonrl.cli ...` is the `reasonrl` command."""

import sys

from reasonrl.cli import main

sys.exit(main())
