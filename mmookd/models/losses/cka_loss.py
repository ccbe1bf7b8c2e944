# Copyright (c) mmookd contributors. All rights reserved.
"""CKA attention-map distillation of paper B (Truong et al.; Kornblith et
al., ICML 2019; docs/companion_losses.md, ``AttentionCKALoss``)."""
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .kd_utils import check_reduction, fp32_scope, reduce_items, to_fp32

__all__ = ['AttentionCKALoss', 'cka', 'hsic']


def _center(k: Tensor) -> Tensor:
    """``H K H`` for (..., n, n) kernels, ``H = I - 11^T / n``."""
    k = k - k.mean(-1, keepdim=True)
    return k - k.mean(-2, keepdim=True)


def _rbf(x: Tensor, sigma_factor: float, eps: float) -> Tensor:
    """``exp(-|x_i - x_j|^2 / (2 sigma^2))``, ``sigma = sigma_factor *
    median_{i != j} |x_i - x_j|`` per item."""
    sq = torch.cdist(x, x).pow(2)
    n = x.size(-2)
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    dists = sq[..., off].clamp_min(0).sqrt()
    median = dists.median(-1).values if dists.numel() else sq.new_zeros(
        sq.shape[:-2])
    sigma = (sigma_factor * median).clamp_min(eps)
    return torch.exp(-sq / (2 * sigma[..., None, None]**2))


def _flat_kernel(k: Tensor, eps: float) -> Tensor:
    """Whether the centred kernel ``HKH`` carries less than ``eps`` of the
    norm of ``K`` (constant rows)."""
    norm = k.flatten(-2).norm(dim=-1)
    return _center(k).flatten(-2).norm(dim=-1) < eps * norm


def hsic(k: Tensor, l: Tensor, unbiased: bool = False) -> Tensor:
    """HSIC of (..., n, n) kernel matrices.

    Biased: ``tr(K H L H) / (n - 1)^2``. Unbiased (Song et al. 2012, as
    used for mini-batch CKA; needs n > 3): with zeroed diagonals,
    ``[tr(K L) + 1^T K 1 1^T L 1 / ((n-1)(n-2)) - 2 / (n-2) 1^T K L 1] /
    (n (n - 3))``.
    """
    n = k.size(-1)
    if not unbiased:
        return (_center(k) * l).sum((-1, -2)) / max(n - 1, 1)**2
    if n <= 3:
        raise ValueError(f'the unbiased HSIC needs n > 3 rows, got {n}')
    eye = torch.eye(n, dtype=torch.bool, device=k.device)
    k = k.masked_fill(eye, 0)
    l = l.masked_fill(eye, 0)
    trace = (k * l).sum((-1, -2))
    sums = k.sum((-1, -2)) * l.sum((-1, -2)) / ((n - 1) * (n - 2))
    cross = (k.sum(-1) * l.sum(-1)).sum(-1) * 2 / (n - 2)
    return (trace + sums - cross) / (n * (n - 3))


def cka(x: Tensor,
        y: Tensor,
        kernel: str = 'linear',
        unbiased: bool = False,
        sigma_factor: float = 1.0,
        form: str = 'auto',
        eps: float = 1e-6) -> Tensor:
    """Centered kernel alignment of row-aligned ``x`` (..., n, p) and ``y``
    (..., n, q); ``p != q`` is allowed.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. The biased linear
    CKA has two equal forms: Gram ``<HKH, HLH>_F / (|HKH| |HLH|)`` with
    ``K = X X^T`` (O(n^2 (p + q))) and feature ``|Y~^T X~|_F^2 / (|X~^T
    X~|_F |Y~^T Y~|_F)`` on column-centred ``X~, Y~`` (O(n p q));
    ``form='auto'`` picks the cheaper one. Inputs are scaled to unit
    Frobenius norm first (CKA is scale invariant; this keeps float32 away
    from under- / overflow). An item is degenerate when its centred
    features (linear) or centred kernel (RBF) carry less than ``eps`` of
    the uncentred norm (constant rows: nothing to align); it gets CKA 1,
    so its loss ``1 - CKA`` is 0 (finite).

    Returns:
        Tensor: (...) CKA in [0, 1] (biased), float32 or wider.
    """
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f'x {tuple(x.shape)} and y {tuple(y.shape)} must '
                         'have the same rows (..., n, *)')
    if kernel not in ('linear', 'rbf'):
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    if form not in ('auto', 'gram', 'feature'):
        raise ValueError(f'unknown form {form!r}')
    tiny = torch.finfo(torch.float32).tiny
    x, y = to_fp32(x), to_fp32(y)
    x = x / x.flatten(-2).norm(dim=-1)[..., None, None].clamp_min(tiny)
    y = y / y.flatten(-2).norm(dim=-1)[..., None, None].clamp_min(tiny)
    n, p, q = x.size(-2), x.size(-1), y.size(-1)
    use_feature = kernel == 'linear' and not unbiased and (
        form == 'feature' or (form == 'auto' and p * q < n * (p + q)))
    if kernel == 'linear':
        xc = x - x.mean(-2, keepdim=True)
        yc = y - y.mean(-2, keepdim=True)
        degenerate = (xc.flatten(-2).norm(dim=-1) < eps) | (
            yc.flatten(-2).norm(dim=-1) < eps)
    if use_feature:
        hxy = (yc.transpose(-1, -2) @ xc).pow(2).sum((-1, -2))
        hxx = (xc.transpose(-1, -2) @ xc).pow(2).sum((-1, -2))
        hyy = (yc.transpose(-1, -2) @ yc).pow(2).sum((-1, -2))
    else:
        if kernel == 'linear':
            k, l = x @ x.transpose(-1, -2), y @ y.transpose(-1, -2)
        else:
            k, l = _rbf(x, sigma_factor, eps), _rbf(y, sigma_factor, eps)
            degenerate = _flat_kernel(k, eps) | _flat_kernel(l, eps)
        hxy = hsic(k, l, unbiased)
        hxx = hsic(k, k, unbiased)
        hyy = hsic(l, l, unbiased)
    denom = (hxx.clamp_min(0) * hyy.clamp_min(0)).sqrt().clamp_min(tiny)
    value = hxy / denom
    return torch.where(degenerate, torch.ones_like(value), value)


@MODELS.register_module()
class AttentionCKALoss(BaseModule):
    """``L_CKA = 1 - CKA(A_T, A_S)`` (paper B's attention-map loss).

    Inputs are row-aligned maps ``(..., n, q)`` (student) and ``(..., n,
    p)`` (teacher): the ``n`` rows must be the same tokens for both models,
    the columns may differ in number and order (different key counts, head
    counts, query sets), since CKA is invariant to orthogonal transforms of
    the columns (permutations included) and to isotropic scaling. Applied
    to a DETR-style decoder (our design) the rows are the cells of a
    common grid onto which the deformable attention is rasterised and the
    columns are (head, query) pairs, so no query correspondence is needed;
    see :func:`mmookd.models.utils.rasterize_deformable_attention`.

    The loss is averaged over the leading dims (layers, frames, batch) and
    lies in [0, 1] for the biased estimator. Teacher maps carry no
    gradient; internals are float32 with autocast disabled.

    Args:
        kernel (str): ``'linear'`` or ``'rbf'``. Defaults to ``'linear'``.
        unbiased (bool): Unbiased HSIC (small n). Defaults to False.
        sigma_factor (float): RBF bandwidth factor rho (``sigma = rho *
            median distance``). Defaults to 1.0.
        form (str): ``'auto'``, ``'gram'`` or ``'feature'`` (linear,
            biased only). Defaults to ``'auto'``.
        eps (float): Denominator epsilon. Defaults to 1e-6.
        reduction (str): ``'mean'``, ``'sum'`` or ``'none'`` over items.
        loss_weight (float): lambda_att (unknown in paper B; 1.0).
    """

    def __init__(self,
                 kernel: str = 'linear',
                 unbiased: bool = False,
                 sigma_factor: float = 1.0,
                 form: str = 'auto',
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if kernel not in ('linear', 'rbf'):
            raise ValueError(f"kernel must be 'linear' or 'rbf', got "
                             f'{kernel!r}')
        self.kernel = kernel
        self.unbiased = unbiased
        self.sigma_factor = sigma_factor
        self.form = form
        self.eps = eps
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (..., n, q) student maps.
            target (Tensor): (..., n, p) teacher maps, same rows.
            weight (Tensor, optional): (...) per-item weights.
            avg_factor (float, optional): Averaging factor.

        Returns:
            Tensor: The weighted loss (``(...)`` for ``'none'``).
        """
        with fp32_scope(pred):
            value = cka(
                pred,
                target.detach(),
                kernel=self.kernel,
                unbiased=self.unbiased,
                sigma_factor=self.sigma_factor,
                form=self.form,
                eps=self.eps)
            loss = (1 - value).reshape(-1)
            if weight is not None:
                weight = weight.reshape(-1)
            loss = reduce_items(loss, self.reduction, weight, avg_factor)
            if self.reduction == 'none':
                loss = loss.view(value.shape)
        return self.loss_weight * loss
