"""Data layer: readers, splits, the embedded default dataset (DESIGN.md §4).

``load(path, format=None, **options)`` reads any supported format into :class:`InteractionData`;
``load()`` / ``default_dataset()`` give the embedded synthetic dataset.
"""
from autosample_ext.data.errors import DataFormatError
from autosample_ext.data.interactions import CSR, InteractionData
from autosample_ext.data.loader import LoadOptions, load
from autosample_ext.data.readers import FORMATS, ColumnSpec
from autosample_ext.data.splits import (leave_one_out_split, ratio_split, sample_eval_negatives,
                                        valid_from_train)
from autosample_ext.data.summary import summarize
from autosample_ext.data.synthetic import SyntheticConfig, default_dataset, generate

__all__ = [
    "CSR", "InteractionData", "DataFormatError", "LoadOptions", "ColumnSpec", "FORMATS", "load",
    "default_dataset", "generate", "SyntheticConfig", "summarize", "ratio_split",
    "leave_one_out_split", "valid_from_train", "sample_eval_negatives",
]
