"""Checks of the fake (meta) kernels: the shape, dtype and device rules of checks.h, so that the
fake kernels refuse what the real ones refuse (torch.compile and opcheck call them)."""
from __future__ import annotations

import torch


def _check_index(op: str, name: str, t: torch.Tensor, dim: int) -> None:
    torch._check(t.dim() == dim, lambda: f"autosample::{op}: argument '{name}' must be {dim}-D, got shape "
                                         f"{tuple(t.shape)}")
    torch._check(t.dtype == torch.int64, lambda: f"autosample::{op}: argument '{name}' must be int64, got {t.dtype}")


def _check_float(op: str, name: str, t: torch.Tensor, dim: int) -> None:
    torch._check(t.dim() == dim, lambda: f"autosample::{op}: argument '{name}' must be {dim}-D, got shape "
                                         f"{tuple(t.shape)}")
    torch._check(t.dtype in (torch.float32, torch.float64),
                 lambda: f"autosample::{op}: argument '{name}' must be float32 or float64, got {t.dtype}")


def _check_devices(op: str, ref_name: str, ref: torch.Tensor, **others: torch.Tensor | None) -> None:
    """As checks.h's check_same_device: the fake kernels must refuse what the real ones refuse
    (a meta tensor among CPU ones dispatches here, and must not return uninitialised memory)."""
    for name, t in others.items():
        if t is not None:
            torch._check(t.device == ref.device, lambda: f"autosample::{op}: argument '{name}' is on {t.device} "
                                                         f"but the other arguments are on {ref.device}")


def _check_same_dtype(op: str, ref: torch.Tensor, name: str, t: torch.Tensor) -> None:
    torch._check(t.dtype == ref.dtype, lambda: f"autosample::{op}: argument '{name}' has dtype {t.dtype} but "
                                               f"expected {ref.dtype}")
