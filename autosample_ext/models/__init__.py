"""Models: MF, LightGCN, NGCF."""
from autosample_ext.models.base import Recommender

__all__ = ["Recommender"]
