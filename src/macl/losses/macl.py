"""MACL: Multi-label Adaptive Contrastive Learning (Amir & Aptoula, arXiv 2512.16294), reconstructed.

The authors released neither code nor readable equations. This follows the project's MACL
specification (kept beside the repository; ``docs/losses.md`` restates what is implemented):
MulSupCon's label-level anchors plus

* **PLR** (pairwise label reweighting): a positive's weight is the rarity-weighted Jaccard of the two
  label sets, ``w_ip = Σ_{c∈Y_i∩Y_p} r_c / Σ_{c∈Y_i∪Y_p} r_c``;
* **DTS** (dynamic temperature scaling): ``'pair'`` — ``T_ij = clamp(tau / (1 + alpha·J_ij + beta·rho_i))``
  with ``rho_i = mean_{c∈Y_i} r_c / max_c r_c``, negatives included (``J = 0``); ``'anchor'`` — one
  temperature per label-level anchor, ``T_c = clamp(tau / (1 + beta·r_c / max_c r_c))``, so each softmax
  row keeps a single temperature;
* **weighted MACL**: each label-level anchor weighted by its label's rarity, ``u_c = r_c``;

with rarity ``r_c = ((N+1)/(n_c+1))^gamma`` normalised to mean 1 over labels, from *training* counts.
With ``pair_weighting=False, alpha=beta=0, weighted=False`` it is exactly :class:`MulSupConLoss`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from macl.labels import label_rarity, overlap_and_union, weighted_jaccard
from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch
from macl.losses.label_level import label_level_terms

DTS_MODES = ("pair", "anchor")


class MACLLoss(ContrastiveLoss):
    """MACL and weighted MACL, every part switchable.

    Args:
        label_counts: number of *training* images carrying each label, (C,). Never batch counts: the
            rarity of a label is a property of the archive, not of the batch.
        num_samples: number of training images ``N``.
        tau: base temperature.
        alpha: DTS weight of the label overlap ``J_ij`` (``dts='pair'`` only). May be negative.
        beta: DTS weight of the anchor's rarity. May be negative. ``alpha = beta = 0`` turns DTS off.
        gamma: rarity exponent; 0 makes every label equally rare (PLR reduces to plain Jaccard, weighted
            MACL to plain MACL).
        pair_weighting: PLR on/off (off: ``w_ip = 1``).
        weighted: weighted MACL (``u_c = r_c``) instead of plain MACL (``u_c = 1``).
        dts: ``'pair'`` or ``'anchor'`` temperature granularity.
        t_min, t_max: bounds of every temperature.
        reduction: ``'label'`` or ``'sample'``, as :class:`MulSupConLoss`.

    The defaults are the specification's suggested starting values, and they are poor: pair-level DTS with
    positive ``alpha`` hurts retrieval badly on UC Merced. The settings chosen on its validation split
    (``pair_weighting=False, weighted=True, alpha=-0.4, beta=0.5`` with the label-aware sampler) are
    frozen in ``configs/ucm.yaml``; docs/results.md has the ablations behind them.
    """

    def __init__(
        self,
        label_counts: Sequence[float] | Tensor,
        num_samples: int,
        tau: float = 0.1,
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 0.5,
        pair_weighting: bool = True,
        weighted: bool = False,
        dts: str = "pair",
        t_min: float = 0.02,
        t_max: float = 1.0,
        reduction: str = "label",
    ) -> None:
        super().__init__(tau)
        if not 0 < t_min <= t_max:
            raise ValueError(f"need 0 < t_min <= t_max; got t_min={t_min}, t_max={t_max}")
        if dts not in DTS_MODES:
            raise ValueError(f"dts must be one of {DTS_MODES}; got {dts!r}")
        # J and rho (or r_c / max r) lie in [0, 1], so the DTS denominator is smallest at these corners.
        lowest = 1 + min(beta, 0.0) + (min(alpha, 0.0) if dts == "pair" else 0.0)
        if lowest <= 0:
            raise ValueError(
                f"alpha={alpha}, beta={beta} can make the DTS denominator 1 + alpha*J + beta*rho "
                f"non-positive (down to {lowest:g}); every temperature must stay positive"
            )
        self.rarity: Tensor
        self.register_buffer("rarity", label_rarity(label_counts, num_samples, gamma))
        self.num_samples = num_samples
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.pair_weighting, self.weighted, self.dts = pair_weighting, weighted, dts
        self.t_min, self.t_max = t_min, t_max
        self.reduction = reduction
        # J and rho lie in [0, 1]: when the extreme pair temperatures are inside [t_min, t_max] the clamp is
        # a no-op, and skipping it saves a full (M, R) pass.
        extremes = [tau / (1 + a + b) for a in (0.0, alpha) for b in (0.0, beta)]
        self._pair_dts_may_clamp = min(extremes) < t_min or max(extremes) > t_max

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        labels, ref_labels = batch.labels, batch.ref_labels
        assert labels is not None and ref_labels is not None
        if labels.shape[1] != self.rarity.shape[0]:
            raise ValueError(
                f"labels have {labels.shape[1]} columns but MACLLoss was built with {self.rarity.shape[0]} label counts"
            )
        rarity = self.rarity.to(batch.sim)
        if self.pair_weighting:
            pair_weight = weighted_jaccard(labels, ref_labels, rarity)
        else:
            pair_weight = torch.ones_like(batch.sim)
        label_weight = rarity if self.weighted else None

        if self.dts == "anchor":
            label_temperature = (self.tau / (1 + self.beta * rarity / rarity.max())).clamp(self.t_min, self.t_max)
            return label_level_terms(
                batch,
                pair_weight,
                label_temperature=label_temperature,
                label_weight=label_weight,
                reduction=self.reduction,
            )
        # Pair DTS as an inverse temperature: sim * (1/T) avoids an (M, R) division, and with alpha = 0
        # the temperature is one per row, (M, 1), so no (M, R) Jaccard matrix is needed at all.
        rho = (labels @ rarity) / labels.sum(1).clamp_min(1) / rarity.max()
        inv_temperature = (1 + self.beta * rho[:, None]) / self.tau
        if self.alpha != 0:  # + (alpha / tau) * J_ij, fused into one (M, R) operation
            shared, union = overlap_and_union(labels, ref_labels)
            inv_temperature = torch.addcdiv(inv_temperature, shared, union, value=self.alpha / self.tau)
        if self._pair_dts_may_clamp:
            inv_temperature = inv_temperature.clamp(1 / self.t_max, 1 / self.t_min)
        return label_level_terms(
            batch,
            pair_weight,
            logits=batch.sim * inv_temperature,
            label_weight=label_weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, "
            f"pair_weighting={self.pair_weighting}, weighted={self.weighted}, dts={self.dts!r}, "
            f"t_min={self.t_min}, t_max={self.t_max}, reduction={self.reduction!r}"
        )
