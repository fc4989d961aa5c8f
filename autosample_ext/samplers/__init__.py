"""Negative samplers, schedules of them by epoch, and their registry by name (docs/search.md)."""
from autosample_ext.samplers.aobpr import AOBPROptions, AOBPRSampler
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler, UserShard
from autosample_ext.samplers.dns import DNSOptions, DNSSampler
from autosample_ext.samplers.gdns import GDNSGroups, GDNSOptions, GDNSSampler
from autosample_ext.samplers.mixgcf import MixGCFOptions, MixGCFSampler
from autosample_ext.samplers.pns import PNSOptions, PNSSampler
from autosample_ext.samplers.registry import (SAMPLERS, build_sampler, check_sampler_name,
                                              check_sampler_options, option_types, parse_schedule, parse_sampler_opt, resolved_options,
                                              sampler_class, sampler_names, sampler_options)
from autosample_ext.samplers.rns import RNSOptions, RNSSampler
from autosample_ext.samplers.schedule import Schedule, ScheduleSampler, is_schedule
from autosample_ext.samplers.srns import SRNSOptions, SRNSSampler

__all__ = [
    "Negatives", "SampleContext", "Sampler",
    "RNSSampler", "PNSSampler", "DNSSampler", "AOBPRSampler", "SRNSSampler", "MixGCFSampler", "GDNSSampler",
    "RNSOptions", "PNSOptions", "DNSOptions", "AOBPROptions", "SRNSOptions", "MixGCFOptions", "GDNSOptions",
    "GDNSGroups", "SAMPLERS", "build_sampler", "sampler_class", "sampler_names", "sampler_options",
    "check_sampler_options", "option_types", "parse_sampler_opt", "resolved_options",
]
__all__ += ["UserShard"]
__all__ += ["Schedule", "ScheduleSampler", "check_sampler_name", "is_schedule", "parse_schedule"]
