"""Data layer: readers, splits, the embedded default dataset (docs/cli.md "Data (the loader)").

``load(path, format=None, **options) -> InteractionData``:

* formats (``readers.FORMATS``, detected from the name, then the content): ``lines``
  (``user item item ...``, LightGCN / MixGCF / DENS / AHNS), ``pairs`` (``user<TAB>item``),
  ``csv`` / ``tsv`` with a header (user, item, optional rating / timestamp), ``u.data``,
  ``ratings.dat``, RecBole ``recbole`` (``.inter``). A folder with ``train.txt`` + ``test.txt``
  (+ ``valid.txt``) or ``name.{train,valid,test}.inter`` keeps its given split.
* options (:class:`LoadOptions`): ``split`` (given | ``"3:1:1"`` | ``"8:1:1"`` | any ``a:b:c`` |
  ``"loo"`` with ``num_negatives`` fixed negatives), ``seed``, ``valid_fraction``,
  ``min_rating``, ``kcore``, ``remap``, declared ``num_users`` / ``num_items``, column names.
* ``load()`` / ``load("default")`` / :func:`default_dataset` give the embedded synthetic data.
* ``info`` holds the summary (:func:`summarize`): counts per split, duplicates removed,
  overlaps, cold test items, warnings. ``python -m autosample_ext.data info PATH`` prints it.
* bad input raises :class:`DataFormatError` (a ValueError) naming the file and line; nothing is
  written anywhere by the data layer.
"""
from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.data.loader import LoadOptions, default_dataset, load, with_valid_from_train
from autosample_ext.data.readers import FORMATS, ColumnSpec
from autosample_ext.data.splits import (leave_one_out_split, ratio_split, sample_eval_negatives,
                                        valid_from_train)
from autosample_ext.data.summary import summarize
from autosample_ext.data.synthetic import SyntheticConfig, generate

__all__ = [
    "CSR", "InteractionData", "DataFormatError", "LoadOptions", "ColumnSpec", "FORMATS", "load",
    "default_dataset", "generate", "SyntheticConfig", "summarize", "ratio_split",
    "leave_one_out_split", "valid_from_train", "sample_eval_negatives", "with_valid_from_train",
]
