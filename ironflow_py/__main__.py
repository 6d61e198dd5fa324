"""`python -m ironflow_py` is `ironflow-py`."""

import sys

from ironflow_py.cli import main

sys.exit(main())
