"""MixGCF: synthesised hard negatives by positive mixing and hop mixing (Huang et al., KDD 2021).

For each row (u, i) and each of its ``n`` negatives, M uniform non-positive candidates
``c_1..c_M`` (stream 0, ``candidates()`` ``[B, n*M]``, pool j = columns ``j*M:(j+1)*M``), and
per layer l = 0..L:

* positive mixing: ``e'_{m,l} = a_l * e_{i,l} + (1 - a_l) * e_{c_m,l}``, ``a_l ~ U(0, 1)`` drawn
  per (row, negative, layer) and shared by the M candidates (stream 1), as the authors' code;
* hop mixing: ``m*_l = argmax_m <e_u, e'_{m,l}>`` (canonical order: ties to the earlier
  candidate). ``e_u`` is the pooled (final) user embedding, the paper's inner product, when the
  model pools to the layer width (LightGCN's mean); for a model whose pooled width differs
  (NGCF's concatenation) the layer-l user embedding ``e_{u,l}`` is used, as the authors' code
  does for every model (``hop_score = "layer"`` forces that reading everywhere);
* the negative is ``model.pool([e'_{m*_0,0}, ..., e'_{m*_L,L}])`` ``[d_pooled]``, computed WITH
  autograd from the model's per-layer tables, so the loss gradient reaches the positive's and
  the chosen candidates' embeddings (the choice itself is not differentiated).

``Negatives.items`` holds ``c_{m*_L}``, the candidate chosen at the last layer (for logging;
the synthesised embedding is what the loss scores). The L2 term covers the ego embedding of that
candidate (``l2_target="candidate"``, default) or, as the authors' code (MixGCF, DENS) does, the
layer-0 slice of the synthesised negative ``a_0 e_{i,0} + (1 - a_0) e_{c_{m*_0},0}``
(``l2_target="mixed"``, ``Negatives.reg_embeddings``).

The per-layer tables are ``ctx.layers`` when the trainer passes them, else
``ctx.model.layer_embeddings()`` (a second propagation). Pass them for models with message
dropout (NGCF in training mode): a second propagation would draw another dropout mask than the
one the loss uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from autosample_ext import ops
from autosample_ext.samplers.base import Negatives, SampleContext, Sampler


@dataclass(frozen=True)
class MixGCFOptions:
    """num_candidates: M (64, the authors' ``n_negs`` in their LightGCN runs).
    hop_score: ``"auto"`` (pooled user embedding when its width is the layer width, else the
    layer's), ``"pooled"`` (error when the widths differ) or ``"layer"``.
    l2_target: what the L2 term covers for the negative: ``"candidate"`` (the ego embedding of
    the last layer's choice) or ``"mixed"`` (the layer-0 synthesised embedding, the authors')."""

    num_candidates: int = 64
    hop_score: Literal["auto", "pooled", "layer"] = "auto"
    l2_target: Literal["candidate", "mixed"] = "candidate"

    def __post_init__(self) -> None:
        if self.l2_target not in ("candidate", "mixed"):
            raise ValueError(f"mixgcf: l2_target must be 'candidate' or 'mixed', got {self.l2_target!r}")
        if self.num_candidates < 1:
            raise ValueError(f"mixgcf: num_candidates must be >= 1, got {self.num_candidates}")
        if self.hop_score not in ("auto", "pooled", "layer"):
            raise ValueError(f"mixgcf: hop_score must be 'auto', 'pooled' or 'layer', got {self.hop_score!r}")


class MixGCFSampler(Sampler):
    """See the module docstring. Graph models only: ``sample`` raises ValueError for MF."""

    name: ClassVar[str] = "mixgcf"
    needs_graph_model: ClassVar[bool] = True
    Options: ClassVar[type] = MixGCFOptions
    options: MixGCFOptions

    def candidates(self, users: torch.Tensor, step: int) -> torch.Tensor:
        seed, offset = self.stream(step, 0)
        return ops.sample_negatives(self.train_indptr, self.train_indices, users, self.data.num_items,
                                    self.num_negatives * self.options.num_candidates, seed, offset,
                                    validate=False)

    def mixing_weights(self, batch: int, num_layers: int, step: int, dtype: torch.dtype) -> torch.Tensor:
        """``a [B, n, L+1]`` ~ U(0, 1) of step ``step``."""
        return self.rand(self.generator(step, 1), batch, self.num_negatives, num_layers, dtype=dtype)

    def sample(self, ctx: SampleContext) -> Negatives:
        self.check_model(ctx.model)
        users, pos = ctx.users, ctx.pos_items
        batch, n, m = users.shape[0], self.num_negatives, self.options.num_candidates
        user_layers, item_layers = ctx.layers if ctx.layers is not None else ctx.model.layer_embeddings()
        num_layers, width = len(item_layers), item_layers[0].shape[1]
        mode = self.options.hop_score
        if mode == "auto":
            mode = "pooled" if ctx.user_table.shape[1] == width else "layer"
        elif mode == "pooled" and ctx.user_table.shape[1] != width:
            raise ValueError(
                f"mixgcf: hop_score='pooled' needs the pooled user embedding ({ctx.user_table.shape[1]}) "
                f"to have the layer width ({width}); {type(ctx.model).__name__} pools differently, "
                f"use hop_score='layer' or 'auto'")
        cand = self.candidates(users, ctx.step)  # [B, n*M]
        mix = self.mixing_weights(batch, num_layers, ctx.step, item_layers[0].dtype)  # [B, n, L+1]

        chosen = []  # per layer [B, n] item ids
        with torch.no_grad():
            for layer in range(num_layers):  # L+1 <= a handful of layers, never the batch
                items_l = item_layers[layer].detach().contiguous()
                user_l = ctx.user_table[users] if mode == "pooled" else user_layers[layer].detach()[users]
                cand_scores = ops.score_candidates(user_l, items_l, cand).view(batch, n, m)
                pos_scores = (user_l * items_l[pos]).sum(1).view(batch, 1, 1)
                a = mix[:, :, layer].unsqueeze(2)
                # <e_u, a e_i + (1 - a) e_c> = a <e_u, e_i> + (1 - a) <e_u, e_c>
                mixed = a * pos_scores + (1 - a) * cand_scores
                _, best = ops.select_topk(mixed.reshape(batch * n, m), 1)
                chosen.append(cand.view(batch * n, m).gather(1, best).view(batch, n))

        synthesised = []
        for layer in range(num_layers):
            a = mix[:, :, layer].unsqueeze(2)
            e_pos = item_layers[layer][pos].unsqueeze(1)  # [B, 1, d]
            e_cand = item_layers[layer][chosen[layer]]  # [B, n, d]
            synthesised.append(a * e_pos + (1 - a) * e_cand)
        reg = synthesised[0] if self.options.l2_target == "mixed" else None
        return Negatives(items=chosen[-1], embeddings=ctx.model.pool(synthesised),
                         reg_embeddings=reg)
