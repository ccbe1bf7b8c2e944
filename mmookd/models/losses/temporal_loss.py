# Copyright (c) mmookd contributors. All rights reserved.
"""Paper A's temporal losses (ETC; docs/companion_losses.md,
``MotionGuidedTemporalLoss`` and ``InstanceTemporalConsistencyLoss``): the
motion-guided temporal loss L_TL and a flow-free instance variant."""
from typing import Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..flow.warp import photometric_occlusion, resize_flow, warp
from .kd_utils import (
    check_reduction,
    fp32_scope,
    reduce_items,
    to_fp32,
    zero_loss,
)

__all__ = ['MotionGuidedTemporalLoss', 'InstanceTemporalConsistencyLoss']


def _activate(x: Tensor, activation: str) -> Tensor:
    if activation == 'sigmoid':
        return x.sigmoid()
    if activation == 'softmax':
        return x.softmax(1)
    return x


@MODELS.register_module()
class MotionGuidedTemporalLoss(BaseModule):
    """``L_TL = mean[ O^k (q_t - W_F(q_t'))^2 ]`` (paper A).

    ``q_t``, ``q_t'`` are the student's predictions of frames ``t`` and
    ``t'`` (``(N, C, h, w)``), ``F`` the flow ``t -> t'`` from a frozen flow
    network (:mod:`mmookd.models.flow`), ``W_F`` backward warping and ``O =
    exp(-alpha d(I_t, W_F(I_t')))`` down-weights pixels where warping is
    unreliable. Student only, no teacher.

    The channels ``C`` are what the caller stacks: the *dense* version
    passes per-class maps (ETC's class scores; for a DETR-style student the
    soft-OR semantic map of its queries), the *instance* version passes one
    mask per track visible in both frames as ``(K, 1, h, w)`` with one flow
    per track (e.g. :class:`~mmookd.models.flow.BoxFlowProvider`).

    Defaults reproduce the released code (``model/flow_model.py``): raw
    logits, ``O`` from the signed channel sum, ``O^2`` (both terms are
    multiplied by ``O`` inside the MSE), gradients into both frames, no
    out-of-bounds mask, predictions upsampled to the flow's resolution
    (``align_corners=True``), MSE mean over ``(N, C, H, W)``. Our VIS
    setting is ``activation='sigmoid', occ_mode='l1',
    mask_power=1, oob_zero=True, resolution='pred'``.

    Args:
        activation (str): ``'none'`` (code: logits, or inputs that already
            are probabilities), ``'sigmoid'`` (masks) or ``'softmax'`` over
            ``C`` (paper: probabilities). Defaults to ``'none'``.
        occ_mode (str): ``'signed_sum'`` (code), ``'l1'`` or ``'none'``.
        occ_alpha (float): ``alpha`` of ``O``. Defaults to 1.0.
        mask_power (int): 2 = code (``O^2``), 1 = paper (``O``).
        detach_target (bool): Detach the warped ``t'`` prediction (pull
            ``t`` towards ``t'`` only). Defaults to False (code).
        oob_zero (bool): Zero weight where ``p + F(p)`` leaves frame ``t'``.
            Defaults to False (code).
        resolution (str): ``'input'``: upsample predictions to the flow's
            size (code); ``'pred'``: resize the flow (vectors rescaled) and
            images to the predictions' size. Defaults to ``'input'``.
        reduction (str): ``'mean'`` over all elements (code), ``'sum'``,
            or ``'none'``: ``(N,)`` per-sample means.
        loss_weight (float): lambda_TL (0.1 in the released config).
    """

    def __init__(self,
                 activation: str = 'none',
                 occ_mode: str = 'signed_sum',
                 occ_alpha: float = 1.0,
                 mask_power: int = 2,
                 detach_target: bool = False,
                 oob_zero: bool = False,
                 resolution: str = 'input',
                 reduction: str = 'mean',
                 loss_weight: float = 0.1) -> None:
        super().__init__()
        if activation not in ('none', 'sigmoid', 'softmax'):
            raise ValueError(f'unknown activation {activation!r}')
        if occ_mode not in ('signed_sum', 'l1', 'none'):
            raise ValueError(f'unknown occ_mode {occ_mode!r}')
        if resolution not in ('input', 'pred'):
            raise ValueError(f"resolution must be 'input' or 'pred', got "
                             f'{resolution!r}')
        self.activation = activation
        self.occ_mode = occ_mode
        self.occ_alpha = occ_alpha
        self.mask_power = mask_power
        self.detach_target = detach_target
        self.oob_zero = oob_zero
        self.resolution = resolution
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                pred_ref: Tensor,
                flow: Tensor,
                img: Optional[Tensor] = None,
                img_ref: Optional[Tensor] = None,
                occ: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (N, C, h, w) predictions of frame ``t``.
            pred_ref (Tensor): (N, C, h, w) predictions of frame ``t'``.
            flow (Tensor): (N or 1, 2, H, W) flow ``t -> t'`` in pixels of
                its own grid.
            img (Tensor, optional): (N or 1, 3, H, W) frame ``t`` for ``O``
                (ETC: mean/std-normalised images).
            img_ref (Tensor, optional): Frame ``t'`` likewise.
            occ (Tensor, optional): (N or 1, 1, H, W) precomputed ``O``
                (replaces the images).
            weight (Tensor, optional): (N,) per-sample weights.
            avg_factor (float, optional): Averaging factor (``'mean'``).

        Returns:
            Tensor: The weighted loss.
        """
        if pred.shape != pred_ref.shape or pred.dim() != 4:
            raise ValueError('pred and pred_ref must both be (N, C, h, w), '
                             f'got {tuple(pred.shape)} and '
                             f'{tuple(pred_ref.shape)}')
        if pred.size(0) == 0:
            return self.loss_weight * zero_loss(pred, pred_ref)
        with fp32_scope(pred):
            q, q_ref = to_fp32(pred), to_fp32(pred_ref)
            flow = flow.detach().float()
            size = q.shape[-2:]
            if self.resolution == 'pred':
                flow = resize_flow(flow, size)
            elif flow.shape[-2:] != size:
                size = flow.shape[-2:]
                q = F.interpolate(
                    q, size=size, mode='bilinear', align_corners=True)
                q_ref = F.interpolate(
                    q_ref, size=size, mode='bilinear', align_corners=True)
            q, q_ref = _activate(q, self.activation), _activate(
                q_ref, self.activation)
            q_hat, valid = warp(q_ref, flow, return_valid=True)
            if self.detach_target:
                q_hat = q_hat.detach()
            o = self._occlusion(flow, img, img_ref, occ, size)
            w = o.pow(self.mask_power) if o is not None else q.new_ones(1)
            if self.oob_zero:
                w = w * valid
            elem = w * (q - q_hat).pow(2)
            if self.reduction == 'mean' and weight is None:
                loss = elem.sum() / avg_factor if avg_factor else elem.mean()
            else:
                per_sample = elem.flatten(1).mean(1)
                loss = reduce_items(per_sample, self.reduction, weight,
                                    avg_factor)
        return self.loss_weight * loss

    def _occlusion(self, flow: Tensor, img: Optional[Tensor],
                   img_ref: Optional[Tensor], occ: Optional[Tensor],
                   size) -> Optional[Tensor]:
        """``O`` at the loss resolution, or None (weight 1)."""
        if occ is not None:
            occ = occ.detach().float()
            if occ.shape[-2:] != tuple(size):
                occ = F.interpolate(
                    occ, size=size, mode='bilinear', align_corners=True)
            return occ
        if self.occ_mode == 'none' or img is None or img_ref is None:
            return None
        img, img_ref = img.detach().float(), img_ref.detach().float()
        if img.shape[-2:] != tuple(size):
            img = F.interpolate(
                img, size=size, mode='bilinear', align_corners=True)
            img_ref = F.interpolate(
                img_ref, size=size, mode='bilinear', align_corners=True)
        if img_ref.size(0) != flow.size(0) and img_ref.size(0) == 1:
            img, img_ref = (img.expand(flow.size(0), -1, -1, -1),
                            img_ref.expand(flow.size(0), -1, -1, -1))
        img_hat = warp(img_ref, flow)
        return photometric_occlusion(img, img_hat, self.occ_mode,
                                     self.occ_alpha)


@MODELS.register_module()
class InstanceTemporalConsistencyLoss(BaseModule):
    """Flow-free, instance-level temporal consistency [DESIGN].

    The flow-free option of paper A's temporal loss, with an optional class
    term: the same track's per-frame outputs at ``t`` and ``t'`` (query
    embeddings, or class logits) should agree; no pixels, hence no flow
    network. Student only.

    * ``metric='cosine'``: ``1 - cos(x_t, x_t')`` per track (embeddings);
    * ``metric='mse'``: mean squared difference per track of the
      ``activation`` outputs (class probabilities, the MSE between
      the class distributions of the same track at t and t').

    Args:
        metric (str): ``'cosine'`` or ``'mse'``. Defaults to ``'cosine'``.
        activation (str): ``'none'``, ``'sigmoid'`` or ``'softmax'`` (over
            the last dim) before the metric. Defaults to ``'none'``.
        detach_ref (bool): Detach frame ``t'`` (pull ``t`` only).
            Defaults to False: both frames are pulled together.
        reduction (str): ``'none'``, ``'mean'`` (over tracks) or ``'sum'``.
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 metric: str = 'cosine',
                 activation: str = 'none',
                 detach_ref: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if metric not in ('cosine', 'mse'):
            raise ValueError(f"metric must be 'cosine' or 'mse', got "
                             f'{metric!r}')
        if activation not in ('none', 'sigmoid', 'softmax'):
            raise ValueError(f'unknown activation {activation!r}')
        self.metric = metric
        self.activation = activation
        self.detach_ref = detach_ref
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                pred_ref: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (K, D) per-track outputs in frame ``t``.
            pred_ref (Tensor): (K, D) the same tracks in frame ``t'``.
            weight (Tensor, optional): (K,) per-track weights.
            avg_factor (float, optional): Averaging factor.

        Returns:
            Tensor: The weighted loss (``(K,)`` for ``'none'``).
        """
        if pred.shape != pred_ref.shape or pred.dim() != 2:
            raise ValueError('pred and pred_ref must both be (K, D), got '
                             f'{tuple(pred.shape)} and '
                             f'{tuple(pred_ref.shape)}')
        if pred.size(0) == 0:
            zero = zero_loss(pred, pred_ref)
            return zero.expand(0) if self.reduction == 'none' else zero
        if self.detach_ref:
            pred_ref = pred_ref.detach()
        with fp32_scope(pred):
            x, y = to_fp32(pred), to_fp32(pred_ref)
            if self.activation == 'sigmoid':
                x, y = x.sigmoid(), y.sigmoid()
            elif self.activation == 'softmax':
                x, y = x.softmax(-1), y.softmax(-1)
            if self.metric == 'cosine':
                loss = 1 - F.cosine_similarity(x, y, dim=-1, eps=1e-8)
            else:
                loss = (x - y).pow(2).mean(-1)
            loss = reduce_items(loss, self.reduction, weight, avg_factor)
        return self.loss_weight * loss
