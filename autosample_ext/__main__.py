"""``python -m autosample_ext``: same as ``python -m autosample_ext.train``."""
from autosample_ext.train import exit_process, main

exit_process(main())
