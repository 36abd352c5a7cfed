"""Slow reference implementations of every loss, written straight from the formulas with explicit loops.

They use Python floats and ``math`` only (no tensor algebra), so they share no code — and no
vectorisation trick — with ``macl.losses``. Positions and sets follow docs/method.md literally.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Vec = list[float]


def _unit(rows: torch.Tensor) -> list[Vec]:
    out = []
    for row in rows.double().tolist():
        norm = math.sqrt(sum(x * x for x in row))
        out.append([x / norm for x in row])
    return out


def _dot(a: Vec, b: Vec) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _sets(labels: torch.Tensor) -> list[set[int]]:
    return [{c for c, v in enumerate(row) if v > 0.5} for row in labels.double().tolist()]


class Pairs:
    """Anchors (the batch) against candidates (the batch, or a reference set)."""

    def __init__(self, emb, labels, ref_emb=None, ref_labels=None, ref_self_index=None) -> None:
        self.z = _unit(emb)
        self.y = _sets(labels) if labels is not None else None
        if ref_emb is None:
            self.zr, self.yr = self.z, self.y
            self.self_pos = list(range(len(self.z)))
        else:
            self.zr = _unit(ref_emb)
            self.yr = _sets(ref_labels) if ref_labels is not None else None
            self.self_pos = [-1] * len(self.z) if ref_self_index is None else [int(v) for v in ref_self_index]

    def contrast(self, i: int) -> list[int]:
        """A(i): every candidate except the anchor itself."""
        return [a for a in range(len(self.zr)) if a != self.self_pos[i]]

    def s(self, i: int, a: int) -> float:
        return _dot(self.z[i], self.zr[a])

    def log_prob(self, i: int, p: int, temp: Callable[[int, int], float]) -> float:
        """l_ip = log( exp(s_ip/T_ip) / Σ_{a∈A(i)} exp(s_ia/T_ia) )."""
        denom = sum(math.exp(self.s(i, a) / temp(i, a)) for a in self.contrast(i))
        return self.s(i, p) / temp(i, p) - math.log(denom)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def supcon(pairs: Pairs, tau: float, positive: str) -> float:
    terms = []
    for i, yi in enumerate(pairs.y):
        if positive == "any":
            pos = [p for p in pairs.contrast(i) if yi & pairs.yr[p]]
        else:
            pos = [p for p in pairs.contrast(i) if yi and yi == pairs.yr[p]]
        if pos:
            terms.append(-_mean([pairs.log_prob(i, p, lambda i, a: tau) for p in pos]))
    return _mean(terms)


def jaccard_supcon(pairs: Pairs, tau: float, threshold: float) -> float:
    terms = []
    for i, yi in enumerate(pairs.y):
        jac = {p: len(yi & pairs.yr[p]) / max(len(yi | pairs.yr[p]), 1) for p in pairs.contrast(i)}
        pos = [p for p in pairs.contrast(i) if jac[p] > threshold]
        if pos:
            terms.append(-sum(jac[p] * pairs.log_prob(i, p, lambda i, a: tau) for p in pos) / len(pos))
    return _mean(terms)


def simdis(pairs: Pairs, tau: float) -> float:
    terms = []
    for i, yi in enumerate(pairs.y):
        pos = [p for p in pairs.contrast(i) if yi & pairs.yr[p]]
        if not pos:
            continue
        total = 0.0
        for p in pos:
            k = len(yi & pairs.yr[p]) / len(yi) * 1.0 / (1 + len(pairs.yr[p] - yi))
            total += k * pairs.log_prob(i, p, lambda i, a: tau)
        terms.append(-total / len(pos))
    return _mean(terms)


def ntxent(pairs: Pairs, ids: list[int], ref_ids: list[int], tau: float) -> float:
    terms = []
    for i in range(len(pairs.z)):
        pos = [p for p in pairs.contrast(i) if ref_ids[p] == ids[i]]
        if pos:
            terms.append(-_mean([pairs.log_prob(i, p, lambda i, a: tau) for p in pos]))
    return _mean(terms)


def mulsupcon(pairs: Pairs, tau: float, reduction: str) -> float:
    anchors: list[tuple[int, float]] = []
    for i, yi in enumerate(pairs.y):
        for c in sorted(yi):
            pos = [p for p in pairs.contrast(i) if c in pairs.yr[p]]
            if pos:
                anchors.append((i, -_mean([pairs.log_prob(i, p, lambda i, a: tau) for p in pos])))
    return _label_level_mean(anchors, [1.0] * len(anchors), reduction)


def _label_level_mean(anchors: list[tuple[int, float]], u: list[float], reduction: str) -> float:
    per_image: dict[int, int] = {}
    for i, _ in anchors:
        per_image[i] = per_image.get(i, 0) + 1
    v = [1.0 if reduction == "label" else 1.0 / per_image[i] for i, _ in anchors]
    num = sum(vk * uk * term for vk, uk, (_, term) in zip(v, u, anchors, strict=True))
    den = sum(vk * uk for vk, uk in zip(v, u, strict=True))
    return num / den if den else 0.0


def macl(
    pairs: Pairs,
    label_counts: Sequence[float],
    num_samples: int,
    *,
    tau: float,
    alpha: float,
    beta: float,
    gamma: float,
    pair_weighting: bool,
    weighted: bool,
    dts: str,
    t_min: float,
    t_max: float,
    reduction: str,
) -> float:
    raw = [((num_samples + 1) / (n + 1)) ** gamma for n in label_counts]
    r = [x / _mean(raw) for x in raw]
    r_max = max(r)

    def jac(a: set[int], b: set[int]) -> float:
        return len(a & b) / len(a | b) if a | b else 0.0

    def clamp(t: float) -> float:
        return min(max(t, t_min), t_max)

    def pair_temp(i: int, a: int) -> float:
        rho = _mean([r[c] for c in pairs.y[i]]) / r_max
        return clamp(tau / (1 + alpha * jac(pairs.y[i], pairs.yr[a]) + beta * rho))

    def w(i: int, p: int) -> float:
        if not pair_weighting:
            return 1.0
        shared = sum(r[c] for c in pairs.y[i] & pairs.yr[p])
        union = sum(r[c] for c in pairs.y[i] | pairs.yr[p])
        return shared / union

    anchors: list[tuple[int, float]] = []
    u: list[float] = []
    for i, yi in enumerate(pairs.y):
        for c in sorted(yi):
            pos = [p for p in pairs.contrast(i) if c in pairs.yr[p]]
            if not pos:
                continue
            if dts == "pair":
                temp = pair_temp
            else:
                t_c = clamp(tau / (1 + beta * r[c] / r_max))

                def temp(i: int, a: int, t_c: float = t_c) -> float:
                    return t_c

            num = sum(w(i, p) * pairs.log_prob(i, p, temp) for p in pos)
            den = sum(w(i, p) for p in pos)
            anchors.append((i, -num / den))
            u.append(r[c] if weighted else 1.0)
    return _label_level_mean(anchors, u, reduction)
