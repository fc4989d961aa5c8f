"""Reporting: tables, statistics, printouts and figures drawn from saved results (a run's
``metrics.json`` / ``alpha.csv``, an experiments report's ``report.json``). Reads results;
trains nothing.

- :mod:`.tables`: the per-run table, aggregates and paired t-tests, the summary text;
- :mod:`.printout`: the legend and popularity-floor lines of the printed summary;
- :mod:`.figures`: a run's figures; :mod:`.race`: a race's own table and search-space listing;
- :mod:`.experiments`, :mod:`.experiments_figures`, :mod:`.picks`, :mod:`.race_table`: the
  experiments' report (``python -m autosample_ext.experiments``);
- :mod:`.false_negatives`: the false-negative study's histograms and report.
"""
