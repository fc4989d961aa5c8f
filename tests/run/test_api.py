"""The package's public Python API and its import structure."""
from __future__ import annotations

import subprocess
import sys

import autosample_ext


def test_every_public_name_resolves():
    for name in autosample_ext.__all__:
        assert getattr(autosample_ext, name) is not None, name
    assert autosample_ext.RunConfig().mode == "autosample"


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_package_import_does_not_load_pandas_or_scipy():
    out = _fresh_python("import sys, autosample_ext; "
                        "print(sorted(m for m in ('pandas', 'scipy') if m in sys.modules))")
    assert out == "[]"


def test_data_modules_import_in_any_order():
    # synthetic.py and loader.py once imported each other; each must import on its own first.
    for module in ("autosample_ext.data.synthetic", "autosample_ext.data.loader",
                   "autosample_ext.training", "autosample_ext.search",
                   "autosample_ext.run"):
        assert _fresh_python(f"import {module}; print('ok')") == "ok", module
