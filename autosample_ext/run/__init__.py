"""A run: its configuration (:class:`RunConfig`), the protocols, the checks before training,
the driver that runs each seed's phases (single samplers, AutoSample search + retrain, grid,
successive halving), the run directory and its lock. Tables and figures: :mod:`autosample_ext.report`."""
from autosample_ext.run.config import (
    DEFAULT_SEARCH_SPACE,
    PROTOCOLS,
    SEARCHES,
    RunConfig,
)
from autosample_ext.run.driver import RunSummary, run
from autosample_ext.run.protocols import PROTOCOL_SPECS, Protocol, ProtocolConflict
from autosample_ext.search.records import AUTOSAMPLE, PhaseRecord
from autosample_ext.report.tables import (
    aggregate,
    metrics_frame,
    paired_ttests,
    render_table,
    summary_text,
)
from autosample_ext.run.rundir import RunDir, default_out_dir

__all__ = [
    "DEFAULT_SEARCH_SPACE", "PROTOCOLS", "SEARCHES",
    "RunConfig", "RunSummary", "run", "AUTOSAMPLE", "PhaseRecord", "aggregate", "metrics_frame",
    "paired_ttests", "render_table", "summary_text", "RunDir", "default_out_dir",
    "PROTOCOL_SPECS", "Protocol", "ProtocolConflict",
]
