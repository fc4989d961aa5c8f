"""Experiments: the run configuration, its phases (single samplers, AutoSample search +
retrain, grid), the run directory, and the reporting of results (tables, t-tests, plots)."""
from autosample_ext.experiment.config import (
    DEFAULT_SEARCH_SPACE,
    DENS_DEFAULT_SAMPLERS,
    DENS_SETTINGS,
    MODELS,
    PROTOCOLS,
    SEARCHES,
    RunConfig,
)
from autosample_ext.experiment.driver import RunSummary, run
from autosample_ext.experiment.protocols import PROTOCOL_SPECS, Protocol, ProtocolConflict
from autosample_ext.experiment.phases import AUTOSAMPLE, PhaseRecord
from autosample_ext.experiment.reporting import (
    aggregate,
    metrics_frame,
    paired_ttests,
    render_table,
    summary_text,
)
from autosample_ext.experiment.rundir import RunDir, default_out_dir

__all__ = [
    "DEFAULT_SEARCH_SPACE", "DENS_DEFAULT_SAMPLERS", "DENS_SETTINGS", "MODELS", "PROTOCOLS", "SEARCHES",
    "RunConfig", "RunSummary", "run", "AUTOSAMPLE", "PhaseRecord", "aggregate", "metrics_frame",
    "paired_ttests", "render_table", "summary_text", "RunDir", "default_out_dir",
    "PROTOCOL_SPECS", "Protocol", "ProtocolConflict",
]
