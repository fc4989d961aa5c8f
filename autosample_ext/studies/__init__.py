"""Studies: analyses and measurement scripts behind the numbers in ``bench/results/`` and the
docs, each a command of its own (``python -m autosample_ext.studies.<name>``). They use the
library; nothing in the library uses them.

- :mod:`.false_negatives`: how often each sampler picks a held-out positive (a false negative);
- :mod:`.gdns_lr_sweep`, :mod:`.gdns_table`, :mod:`.gdns_long_run`: the GDNS-protocol comparison;
- :mod:`.dens_fidelity`: this tool against the DENS authors' published numbers;
- :mod:`.epoch_costs`: the CPU cost of one epoch per sampler;
- :mod:`.op_bad_inputs_table`: the operators' bad-input table before/after;
- :mod:`.report_add_alpha`: adds alpha trajectories to an experiments report.
"""
