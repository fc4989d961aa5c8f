"""The race table's cost accounting: epochs priced at the single runs' prices, and where a
race's cost went (the reason printed beside a missed cost target)."""
import pytest

from autosample_ext.report.race_table import (
    _by,
    epoch_priced,
    priced_candidates,
    sh_cost_why,
)


def _grid():
    # RNS alone: 10 CPU s over 50 epochs (0.2 s/epoch); DNS alone: 30 CPU s over 30 (1 s/epoch)
    runs = [{"method": "rns", "seed": 0, "cpu_seconds": 10.0, "epochs_run": 50},
            {"method": "dns", "seed": 0, "cpu_seconds": 30.0, "epochs_run": 30}]
    return {"runs": runs, "grid": {"0": {"cpu_seconds": 40.0, "chosen": "dns"}}}


def _race(curriculum=None):
    runs = [{"sampler": "rns", "epochs_run": 4},
            {"sampler": "dns(num_candidates=8)", "epochs_run": 20},
            # branched from RNS at epoch 4: its RNS prefix is RNS's, counted there
            {"sampler": "rns@4+dns", "epochs_run": 8, "branch_epoch": 4}]
    block = {"chosen": "dns(num_candidates=8)", "runs": runs}
    if curriculum:
        block["curriculum"] = curriculum
    return {"sh": {"0": block}}


def test_priced_candidates_price_each_segment_at_its_samplers_single_run():
    costs = priced_candidates(_grid(), _race())["0"]
    assert costs == pytest.approx({"rns": 4 * 0.2 / 40, "dns(num_candidates=8)": 20 / 40,
                                   "rns@4+dns": 4 / 40})
    assert epoch_priced(_grid(), _race())["0"] == pytest.approx(24.8 / 40)
    # the curriculum stage is priced at its (last) sampler's price
    staged = _race({"harder": "dns", "epochs_run": 5})
    assert priced_candidates(_grid(), staged)["0"]["curriculum stage"] == pytest.approx(5 / 40)
    assert epoch_priced(_grid(), staged)["0"] == pytest.approx(29.8 / 40)


def test_sh_cost_why_splits_the_picks_run_from_the_others_rungs():
    why = sh_cost_why(_grid(), _race())
    assert why == ("the pick's own run 0.50, the other candidates' rungs 0.12 "
                   "(RNS@4+DNS 0.10)")
    alone = {"sh": {"0": {"chosen": "dns", "runs": [{"sampler": "dns", "epochs_run": 30}]}}}
    assert sh_cost_why(_grid(), alone) == "the pick's own run 0.75, the other candidates' rungs 0.00"


def test_a_miss_that_rounds_to_zero_keeps_its_sign_and_size():
    assert _by(0.1612) == "+0.16" and _by(0.0018) == "+0.002" and _by(-0.046) == "-0.05"
