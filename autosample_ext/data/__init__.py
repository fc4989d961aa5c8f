"""Data layer: readers, splits, the embedded default dataset (DESIGN.md §4)."""
from autosample_ext.data.interactions import CSR, InteractionData

__all__ = ["CSR", "InteractionData"]
