"""Readers, format detection, filters, remapping and bad-input errors (small fixtures)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autosample_ext.data import DataFormatError, InteractionData, LoadOptions, load
from autosample_ext.data.readers import sniff_file_format, tokenize_ints

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data"
ROOT = Path(__file__).resolve().parents[2]


def raw_pairs(data: InteractionData, splits=("train", "valid", "test")) -> set[tuple]:
    """All (raw user, raw item) pairs of the given splits."""
    out = set()
    for s in splits:
        u, i = getattr(data, s).pairs()
        u, i = u.numpy(), i.numpy()
        ru = data.raw_user_ids[u] if data.raw_user_ids is not None else u
        ri = data.raw_item_ids[i] if data.raw_item_ids is not None else i
        out |= {(a.item() if hasattr(a, "item") else a, b.item() if hasattr(b, "item") else b)
                for a, b in zip(ru, ri)}
    return out


def csr_valid(data: InteractionData) -> None:
    for s in ("train", "valid", "test"):
        c = getattr(data, s)
        assert c.indptr.dtype == torch.int64 and c.indices.dtype == torch.int64
        assert c.num_users == data.num_users
        for u in range(data.num_users):
            row = c.row(u)
            assert torch.all(row[1:] > row[:-1]), f"{s} row {u} not sorted/unique"
        if c.nnz:
            assert int(c.indices.min()) >= 0 and int(c.indices.max()) < data.num_items


# ----------------------------------------------------------------------------- formats

def test_lines_given_split_kept_with_quirks():
    d = load(FIX / "lines_given")
    csr_valid(d)
    assert (d.num_users, d.num_items) == (4, 7)
    assert raw_pairs(d, ["train"]) == {(0, 1), (0, 2), (0, 3), (1, 0), (1, 4), (2, 0), (2, 1),
                                       (2, 3), (2, 5), (3, 2)}
    assert raw_pairs(d, ["test"]) == {(0, 1), (0, 4), (1, 2), (2, 6)}
    assert d.valid.nnz == 0 and d.raw_user_ids is None
    info = d.info
    assert info["split"] == "given" and info["format"] == "lines"
    assert info["rows_read"] == {"train": 11, "test": 4}
    assert info["duplicates_removed"] == {"train": 1, "test": 0, "total": 1}
    assert info["test_in_train"] == 1
    assert info["users_without_test"] == 1
    assert info["test_items_not_in_train"] == 1
    joined = " ".join(info["warnings"])
    assert "also appear in train" in joined and "never appear in train" in joined


def test_lines_given_with_valid_file():
    d = load(FIX / "lines_given_valid")
    assert raw_pairs(d, ["valid"]) == {(0, 4), (1, 2), (2, 1)}
    assert raw_pairs(d, ["test"]) == {(0, 5), (1, 1), (2, 2)}
    assert d.info["valid_in_train"] == 1  # (2, 1) is in train too
    with pytest.raises(ValueError, match="already has validation pairs"):
        load(FIX / "lines_given_valid", valid_fraction=0.2)


def test_valid_fraction_draws_from_train_only():
    d = load(FIX / "lines_given", valid_fraction=0.5, seed=3)
    base = load(FIX / "lines_given")
    assert raw_pairs(d, ["train", "valid"]) == raw_pairs(base, ["train"])
    assert raw_pairs(d, ["train"]) & raw_pairs(d, ["valid"]) == set()
    assert raw_pairs(d, ["test"]) == raw_pairs(base, ["test"])
    assert d.valid.nnz > 0
    assert d.train.degrees()[3] == 1  # the single-item user keeps it in train


def test_pairs_file_detected():
    assert sniff_file_format(FIX / "pairs.txt") == "pairs"
    d = load(FIX / "pairs.txt", split="8:1:1")
    assert raw_pairs(d) == {(0, 3), (0, 7), (1, 3), (2, 5), (4, 1)}
    assert d.info["duplicates_removed"]["total"] == 1
    assert d.info["format"] == "pairs" and not d.info["remapped"]
    assert (d.num_users, d.num_items) == (5, 8)


def test_csv_string_ids_remapped_min_rating_dedup_keeps_earliest():
    d = load(FIX / "ratings.csv", split="loo", num_negatives=1)
    assert d.info["format"] == "csv" and d.info["remapped"]
    assert list(d.raw_user_ids) == ["alice", "bob", "carol"]
    assert list(d.raw_item_ids) == ["apple", "pear", "plum"]
    assert raw_pairs(d) == {("alice", "apple"), ("alice", "pear"), ("bob", "apple"),
                            ("bob", "plum"), ("carol", "pear"), ("carol", "plum")}
    assert d.info["duplicates_removed"]["total"] == 1
    # leave-one-out by time: the latest interaction of each user is its test item;
    # alice's duplicate apple keeps its earliest timestamp (100), so pear (101) is latest.
    assert raw_pairs(d, ["test"]) == {("alice", "pear"), ("bob", "plum"), ("carol", "plum")}
    d4 = load(FIX / "ratings.csv", min_rating=4)
    assert d4.info["dropped_below_min_rating"] == {"all": 2}
    assert raw_pairs(d4) == {("alice", "apple"), ("bob", "apple"), ("bob", "plum"),
                             ("carol", "plum")}


def test_tsv_with_float_ratings_and_integer_raw_ids():
    d = load(FIX / "interactions.tsv", min_rating=3.0)
    assert d.info["format"] == "tsv"
    assert list(d.raw_user_ids) == [10, 20, 30] and list(d.raw_item_ids) == [100, 300]
    assert raw_pairs(d) == {(10, 100), (20, 100), (30, 300)}


def test_explicit_columns():
    d = load(FIX / "interactions.tsv", user_col="movieId", item_col="userId")
    assert (100, 10) in raw_pairs(d)


@pytest.mark.parametrize("target, fmt", [("ml-100k", "u.data"), ("ml-100k/u.data", "u.data"),
                                         ("ml-1m", "ratings.dat"),
                                         ("ml-1m/ratings.dat", "ratings.dat")])
def test_movielens(target, fmt):
    d = load(FIX / target, min_rating=4)
    assert d.info["format"] == fmt and d.info["remapped"]
    if fmt == "u.data":
        assert raw_pairs(d) == {(196, 377), (186, 242), (22, 242)}
    else:
        assert raw_pairs(d) == {(1, 1193), (2, 1193), (2, 3408), (3, 661)}


def test_recbole_single_and_split():
    d = load(FIX / "recbole")
    assert d.info["format"] == "recbole"
    assert raw_pairs(d) == {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u3", "i3")}
    s = load(FIX / "recbole_split")
    assert s.info["split"] == "given"
    assert raw_pairs(s, ["train"]) == {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i3")}
    assert raw_pairs(s, ["valid"]) == {("u1", "i3")}
    assert raw_pairs(s, ["test"]) == {("u2", "i2"), ("u3", "i1")}
    assert s.info["users_without_train"] == 1


def test_format_override_and_aliases(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text("1\t5\t3\t10\n2\t5\t4\t11\n")
    as_lines = load(p, split="8:1:1")  # headerless 4 columns sniff as user item item item
    assert as_lines.info["format"] == "lines" and as_lines.info["interactions"] == 6
    as_udata = load(p, "ml-100k", split="8:1:1")
    assert as_udata.info["format"] == "u.data" and as_udata.info["interactions"] == 2


def test_kcore_fixed_point(tmp_path):
    # user 3 has 1 item; removing it drops item 9 to degree 1, which then drops user 2 ...
    p = tmp_path / "k.txt"
    p.write_text("0 1 2\n1 1 2\n2 2 9\n3 9\n")
    d = load(p, kcore=2, split="8:1:1", remap=True)
    assert raw_pairs(d) == {(0, 1), (0, 2), (1, 1), (1, 2)}
    assert d.info["kcore"]["users_removed"] == 2 and d.info["kcore"]["items_removed"] == 1
    assert d.info["kcore"]["iterations"] >= 2
    deg_u = np.bincount([u for u, _ in raw_pairs(d)])
    assert (deg_u[deg_u > 0] >= 2).all()


def test_load_options_object_and_unknown_option():
    d = load(FIX / "pairs.txt", options=LoadOptions(split="8:1:1", seed=1))
    assert d.info["seed"] == 1
    with pytest.raises(TypeError, match="unknown load option"):
        load(FIX / "pairs.txt", splitt="8:1:1")


def test_tokenizer_matches_python_parse():
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 10**15, size=200)
    text = "\n".join(" ".join(str(v) for v in vals[i:i + 7]) for i in range(0, 200, 7)) + "\n"
    tok = tokenize_ints(text.encode(), Path("x"))
    assert np.array_equal(tok.values, vals)
    assert np.array_equal(tok.line, np.arange(200) // 7)


# ----------------------------------------------------------------------------- bad input

def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("name, text, fmt, line, pattern", [
    ("a.txt", "0 1 2\n1 x 3\n", None, 2, "non-integer id 'x'"),
    ("a.txt", "0 1 2\n1 2.5\n", None, 2, "non-integer id '2.5'"),
    ("a.txt", "0 1\n1 2\n2 -3\n", None, 3, "negative id -3"),
    ("p.txt", "0\t1\n1\t2\t3\n", "pairs", 2, "expected 2 fields"),
    ("u.data", "1\t2\t3\t4\n1\t2\t3\n", None, 2, "expected 4 fields"),
    ("ratings.dat", "1::2::3::4\n1::2:3::4\n", None, 2, "non-integer"),
    ("r.csv", "user,item,rating\n1,2,5\n1,,4\n", None, 3, "missing item value"),
    ("r.csv", "user,item,rating\n1,2,5\n3,4,good\n", None, 3, "rating 'good' is not a number"),
    ("r.csv", "user,item\n1,2\n1,2,3\n", None, 3, "malformed line"),
    ("r.csv", "user,item\n1,2\n-1,2\n", None, 3, "negative user id"),
    ("big.txt", "0 1\n1 12345678901234567890\n", None, 2, "more than 18 digits"),
])
def test_malformed_input_names_file_and_line(tmp_path, name, text, fmt, line, pattern):
    p = _write(tmp_path, name, text)
    with pytest.raises(DataFormatError, match=pattern) as err:
        load(p, fmt, split="8:1:1")
    assert err.value.path == str(p) and err.value.line == line
    assert str(p) in str(err.value) and f"line {line}" in str(err.value)


def test_missing_column_names_header(tmp_path):
    p = _write(tmp_path, "r.csv", "person,thing\n1,2\n")
    with pytest.raises(DataFormatError, match="missing user column") as err:
        load(p)
    assert err.value.line == 1 and "person" in str(err.value)
    with pytest.raises(DataFormatError, match="missing item column 'nope'"):
        load(p, user_col="person", item_col="nope")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    p = _write(tmp_path, "e.txt", text)
    with pytest.raises(DataFormatError, match="empty") as err:
        load(p)
    assert err.value.path == str(p)


def test_header_only_csv(tmp_path):
    with pytest.raises(DataFormatError, match="no interactions"):
        load(_write(tmp_path, "h.csv", "user,item\n"))


def test_empty_test_file_in_given_split(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n")
    (tmp_path / "test.txt").write_text("")
    with pytest.raises(DataFormatError, match="empty") as err:
        load(tmp_path)
    assert err.value.path == str(tmp_path / "test.txt")


def test_unknown_format_and_missing_path(tmp_path):
    with pytest.raises(DataFormatError, match="unknown format 'parquet'"):
        load(FIX / "pairs.txt", "parquet")
    (tmp_path / "readme.md").write_text("hello")
    with pytest.raises(DataFormatError, match="unknown format: folder"):
        load(tmp_path)
    with pytest.raises(DataFormatError, match="no such file"):
        load(tmp_path / "absent.txt")


def test_declared_item_range(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 0\n")
    (tmp_path / "test.txt").write_text("0 3\n1 7\n")
    d = load(tmp_path)  # inferred range covers the test-only items: a warning, not an error
    assert d.num_items == 8 and d.info["test_items_not_in_train"] == 2
    with pytest.raises(DataFormatError, match="item id 7 is out of range") as err:
        load(tmp_path, num_items=5)
    assert err.value.path == str(tmp_path / "test.txt") and err.value.line == 2
    assert load(tmp_path, num_items=10).num_items == 10


def test_min_rating_without_rating_column():
    with pytest.raises(ValueError, match="no rating column"):
        load(FIX / "pairs.txt", min_rating=3)


def test_string_ids_without_remap(tmp_path):
    with pytest.raises(DataFormatError, match="not integers"):
        load(FIX / "ratings.csv", remap=False)


# ----------------------------------------------------------------------------- CLI

def test_cli_info_json(capsys):
    from autosample_ext.data.__main__ import main

    assert main(["info", str(FIX / "lines_given")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] == 4 and out["train_pairs"] == 10 and out["test_pairs"] == 4
    assert out["duplicates_removed"]["total"] == 1 and out["test_in_train"] == 1
    assert main(["info", str(FIX / "lines_given"), "--kcore", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kcore"] == {"k": 2, "iterations": 2, "users_removed": 1, "items_removed": 2,
                            "pairs_removed": 3}
    assert main(["info", str(FIX / "ratings.csv"), "--min-rating", "4", "--split", "8:1:1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dropped_below_min_rating"] == {"all": 2} and out["interactions"] == 4
    # every pair filtered away: a clear error (data that cannot be used: status 1, as train's),
    # nothing printed on stdout
    assert main(["info", str(FIX / "ratings.csv"), "--min-rating", "4", "--kcore", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no interactions left" in captured.err


def test_cli_error_exit_code(tmp_path):
    p = _write(tmp_path, "a.txt", "0 1\n1 -2\n")
    env = {"PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "autosample_ext.data", "info", str(p)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stdout == ""  # unreadable data: 1 (docs/cli.md's table)
    assert "line 2" in r.stderr and "negative id -2" in r.stderr


def test_user_line_without_items_and_one_item_test_file(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 2 3\n5\n")
    (tmp_path / "test.txt").write_text("0 3\n1 1\n")  # one item per line: still read as lines
    d = load(tmp_path)
    assert d.info["format"] == "lines"
    assert d.num_users == 6 and d.info["users_without_train"] == 4
    assert d.train.degrees().tolist() == [2, 2, 0, 0, 0, 0]


@pytest.mark.parametrize("text", ["user item rating\n1 2 5\n3 4 1\n",
                                  "user;item;rating\n1;2;5\n3;4;1\n"])
def test_header_file_separator_sniffed(tmp_path, text):
    d = load(_write(tmp_path, "log.txt", text), min_rating=2, split="8:2")
    assert d.info["format"] == "csv" and raw_pairs(d) == {(1, 2)}


def test_csv_dates_as_timestamps_for_leave_one_out(tmp_path):
    p = _write(tmp_path, "r.csv", "user,item,date\na,x,2020-01-03\na,y,2020-01-01\n"
                                  "a,z,2020-01-02\nb,x,2021-05-01\nb,y,2021-04-01\nc,w,2020-01-01\n")
    d = load(p, split="loo", num_negatives=1)
    assert d.info["loo_by"] == "time"
    assert raw_pairs(d, ["test"]) == {("a", "x"), ("b", "x")}
    assert raw_pairs(d, ["valid"]) == {("a", "z")}
    assert d.eval_negatives.shape == (3, 1) and d.eval_negatives[0].tolist() == [0]  # w
    assert raw_pairs(load(p, split="loo", num_negatives=1, loo_by="random"), ["test"]) \
        <= raw_pairs(d)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(kcore=-1), "kcore"), (dict(valid_fraction=1.0), "valid_fraction"),
    (dict(split="3:x:1"), "split ratio"), (dict(loo_by="pop"), "loo_by"),
    (dict(num_negatives=0), "num_negatives"), (dict(num_items=0), "num_items"),
])
def test_bad_options(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        load(FIX / "pairs.txt", **kwargs)


def test_huge_ids_need_remap(tmp_path):
    p = _write(tmp_path, "p.txt", "0\t5000000000\n1\t7\n")
    with pytest.raises(DataFormatError, match="remap=True"):
        load(p, split="8:2")
    d = load(p, split="8:2", remap=True)
    assert d.num_items == 2 and list(d.raw_item_ids) == [7, 5000000000]
    sparse = load(_write(tmp_path, "q.txt", "0\t50000\n1\t7\n"), split="8:2")
    assert any("sparse id range" in w for w in sparse.info["warnings"])
