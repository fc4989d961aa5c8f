"""Tiny inputs shared by the bad-input and fault tests (not a test module)."""
from __future__ import annotations

import errno
import pathlib
from pathlib import Path

import numpy as np

FAST = ["--epochs", "1", "--dim", "8", "--batch-size", "512", "--no-progress", "--threads", "1"]


def skewed_lines(path: Path, users: int = 80, items: int = 40, per_user: int = 8,
                 seed: int = 0) -> Path:
    """``user item item ...`` lines, item popularity ~ 1/rank^1.5: the popularity ranking is a
    strong floor that an untrained model stays below."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, items + 1) ** 1.5
    p /= p.sum()
    with open(path, "w") as fh:
        for u in range(users):
            row = rng.choice(items, size=per_user, replace=False, p=p)
            fh.write(" ".join(map(str, [u, *sorted(row.tolist())])) + "\n")
    return path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# -- bad and edge inputs (tests/run/test_bad_inputs.py, bench/cli_battery_cases.py) ------------

def s_binary(tmp: Path, mp=None) -> None:
    write(tmp / "blob.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def s_gzip(tmp: Path, mp=None) -> None:
    import gzip

    write(tmp / "data.txt", gzip.compress(b"0 1 2\n1 2 3\n"))


def s_latin1_csv(tmp: Path, mp=None) -> None:
    write(tmp / "r.csv", "user,item\nal,x\nb\xe9a,y\n".encode("latin-1"))


def s_one_user(tmp: Path, mp=None) -> None:
    write(tmp / "one.txt", "0 " + " ".join(map(str, range(12))) + "\n")


def s_pairs_of_two(tmp: Path, mp=None) -> None:
    # every user has 2 interactions: 3:1:1 gives each one test item and nothing to validate
    write(tmp / "two.txt", "".join(f"{u} {u % 7} {(u % 7) + 1}\n" for u in range(30)))


def s_one_by_one(tmp: Path, mp=None) -> None:
    write(tmp / "1x1.txt", "0\t0\n")


def s_full_user(tmp: Path, mp=None) -> None:
    write(tmp / "full" / "train.txt", "0 0 1 2\n1 0\n2 1\n")
    write(tmp / "full" / "valid.txt", "1 2\n2 0\n")
    write(tmp / "full" / "test.txt", "1 1\n2 2\n")


def s_huge_ids(tmp: Path, mp=None) -> None:
    # ids beyond 2^31 cannot index a table without --remap
    rows = [f"{u * 10**12}\t{(u * 7 + k) % 30 + 10**12}" for u in range(40) for k in range(5)]
    write(tmp / "huge.tsv.txt", "\n".join(rows) + "\n")


def s_odd_columns(tmp: Path, mp=None) -> None:
    rows = ["who,what"] + [f"u{u},i{(u * 3 + k) % 25}" for u in range(40) for k in range(6)]
    write(tmp / "odd.csv", "\n".join(rows) + "\n")


def s_given_folder(tmp: Path, mp=None) -> None:
    rng = np.random.default_rng(1)
    train, test = [], []
    for u in range(60):
        items = sorted(rng.choice(30, size=8, replace=False).tolist())
        train.append(" ".join(map(str, [u, *items[:6]])))
        test.append(" ".join(map(str, [u, *items[6:]])))
    write(tmp / "given" / "train.txt", "\n".join(train) + "\n")
    write(tmp / "given" / "test.txt", "\n".join(test) + "\n")


def s_ratings_dat(tmp: Path, mp=None) -> None:
    rng = np.random.default_rng(2)
    rows = [f"{u + 1}::{i + 1}::5::{u * 100 + i}" for u in range(40)
            for i in rng.choice(30, size=8, replace=False)]
    write(tmp / "ml.txt", "\n".join(rows) + "\n")


def read_only_folders(mp) -> None:
    """Make every folder named ``ro`` (and below it) read-only for ``Path.mkdir``, as on a
    read-only file system (``mp``: pytest's monkeypatch)."""
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if "ro" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    mp.setattr(pathlib.Path, "mkdir", mkdir)


def rated_csv(path: Path, users: int = 60, items: int = 220, per_user: int = 12) -> Path:
    """A CSV of explicit ratings 1-5 with timestamps (the GDNS and RecBole protocols read
    ratings): ``per_user`` distinct items per user, seeded."""
    rng = np.random.default_rng(3)
    rows = ["user,item,rating,timestamp"]
    for u in range(users):
        for j, i in enumerate(rng.choice(items, per_user, replace=False)):
            rows.append(f"{u},{i},{rng.integers(1, 6)},{1000 + 10 * u + j}")
    path.write_text("\n".join(rows) + "\n")
    return path
