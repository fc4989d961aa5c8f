"""Negative samplers and their registry by name."""
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler

__all__ = ["Negatives", "SampleContext", "Sampler"]
