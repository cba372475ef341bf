"""`python -m mcepl_dist.report DIR... --out docs/results`."""

import sys

from mcepl_dist.report import main

sys.exit(main())
