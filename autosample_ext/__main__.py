"""``python -m autosample_ext``: same as ``python -m autosample_ext.train``."""
import sys

from autosample_ext.train import main

sys.exit(main())
