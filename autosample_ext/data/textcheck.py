"""Is a file text at all? Compressed and binary files, and non-UTF-8 bytes, are named with the
file (and line) before any parser sees them."""
from __future__ import annotations

from pathlib import Path

from autosample_ext.data.errors import DataFormatError

_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2",
               b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def check_text(buf: bytes, path: Path) -> None:
    """Raise DataFormatError for a compressed or binary file (a NUL byte in the first 64 KiB)."""
    for magic, kind in _COMPRESSED.items():
        if buf.startswith(magic):
            raise DataFormatError(f"{kind}-compressed file, not text: decompress it first", path)
    nul = buf.find(b"\x00", 0, 1 << 16)
    if nul >= 0:
        line = buf.count(b"\n", 0, nul) + 1
        raise DataFormatError(f"binary file (NUL byte at offset {nul}), not a text interaction "
                              f"file", path, line)


def check_utf8(buf: bytes, path: Path) -> None:
    """Raise DataFormatError naming the line of the first byte that is not UTF-8."""
    try:
        buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = buf.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(f"not UTF-8 text: byte 0x{buf[exc.start]:02x} at offset "
                              f"{exc.start}; convert the file to UTF-8", path, line) from None
