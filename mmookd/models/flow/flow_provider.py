# Copyright (c) mmookd contributors. All rights reserved.
"""Pluggable optical-flow sources for the motion-guided temporal loss
(paper A's L_TL) and the temporal-consistency metric.

docs/companion_losses.md, "Flow providers": flow is needed only in training
(L_TL) and evaluation (TC), never at inference; the flow network is external,
frozen, fed images in the range it was trained on, and run without gradients in
float32. Every provider here follows one interface:

``provider(img1, img2) -> flow``: ``img1``, ``img2`` are ``(N, 3, H, W)``
RGB images in ``[0, 255]`` (callers undo their normalisation) and ``flow``
is ``(N, 2, H, W)``, the displacement in pixels of every pixel of
``img1`` to ``img2`` (channel 0 = x), the convention of
:func:`mmookd.models.flow.warp`.

Nothing is ever downloaded: weights come from local files and a missing
file is a clear :class:`FileNotFoundError`.
"""
import os.path as osp
from typing import Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = [
    'BaseFlowProvider', 'ZeroFlowProvider', 'TorchScriptFlowProvider',
    'check_local_file'
]


def check_local_file(path: str, what: str, hint: str = '') -> str:
    """``path`` if it is an existing local file, else a clear error."""
    if not path or not osp.isfile(path):
        raise FileNotFoundError(
            f'{what}: checkpoint {path!r} not found. Weights are never '
            f'downloaded; put the file on this machine first. {hint}'.strip())
    return path


class BaseFlowProvider(nn.Module):
    """A frozen optical-flow source (see the module docstring).

    Subclasses implement :meth:`compute_flow` on float32 ``[0, 255]`` RGB
    images; :meth:`forward` adds ``no_grad``, float32 without autocast,
    and eval mode. A provider is never trained: :meth:`train` keeps it in
    eval mode and its parameters do not require grad.
    """

    #: what :meth:`forward` takes: two image batches
    input_type = 'images'

    def train(self, mode: bool = True) -> 'BaseFlowProvider':
        return super().train(False)

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def forward(self, img1: Tensor, img2: Tensor) -> Tensor:
        """Flow ``img1 -> img2``.

        Args:
            img1 (Tensor): (N, 3, H, W) RGB in [0, 255].
            img2 (Tensor): (N, 3, H, W) RGB in [0, 255].

        Returns:
            Tensor: (N, 2, H, W) float32 flow in pixels.
        """
        if img1.shape != img2.shape or img1.dim() != 4:
            raise ValueError('img1 and img2 must both be (N, 3, H, W), got '
                             f'{tuple(img1.shape)} and {tuple(img2.shape)}')
        with torch.autocast(device_type=img1.device.type, enabled=False):
            flow = self.compute_flow(img1.float(), img2.float())
        return flow.float()

    def compute_flow(self, img1: Tensor, img2: Tensor) -> Tensor:
        raise NotImplementedError


@MODELS.register_module()
class ZeroFlowProvider(BaseFlowProvider):
    """Identity warping, ``F = 0`` (the flow-free option:
    only sensible for consecutive frames at a high frame rate; weak on
    YouTube-VIS, whose annotated frames are 5 raw frames apart). Useful as
    a baseline and in tests."""

    def compute_flow(self, img1: Tensor, img2: Tensor) -> Tensor:
        return img1.new_zeros(img1.size(0), 2, *img1.shape[2:])


def pad_to_multiple(imgs: Tensor, divisor: int) -> Tuple[Tensor, int, int]:
    """Replicate-pad (N, C, H, W) at the bottom / right to multiples of
    ``divisor``; returns the padded tensor and the original H, W."""
    h, w = imgs.shape[-2:]
    pad_h, pad_w = (-h) % divisor, (-w) % divisor
    if pad_h or pad_w:
        imgs = F.pad(imgs, (0, pad_w, 0, pad_h), mode='replicate')
    return imgs, h, w


@MODELS.register_module()
class TorchScriptFlowProvider(BaseFlowProvider):
    """Any flow network exported to TorchScript, loaded from a local file.

    The way to use a flow network whose code is not installed here (RAFT
    from torchvision or its original repo, PWC-Net, FlowNet2...): export
    it once with ``torch.jit.script`` / ``torch.jit.trace`` where it is
    installed, then load the file here. The module is called as
    ``model(img1, img2)``; if it returns a list / tuple (RAFT's per-
    iteration predictions), the last element is the flow.

    Args:
        checkpoint (str): Local ``.pt`` file written by ``torch.jit.save``.
        input_range (tuple[float, float]): The value range the network
            expects; ``[0, 255]`` inputs are mapped linearly onto it
            (RAFT: ``(-1, 1)``; FlowNet2: ``(0, 255)``). Defaults to
            ``(-1.0, 1.0)``.
        size_divisor (int): Replicate-pad inputs to multiples of this and
            crop the flow back (RAFT: 8; PWC-Net / FlowNet2: 64). Defaults
            to 8.
    """

    def __init__(self,
                 checkpoint: str,
                 input_range: Tuple[float, float] = (-1.0, 1.0),
                 size_divisor: int = 8) -> None:
        super().__init__()
        check_local_file(checkpoint, 'TorchScriptFlowProvider')
        self.model = torch.jit.load(checkpoint, map_location='cpu')
        self.input_range = tuple(float(v) for v in input_range)
        self.size_divisor = int(size_divisor)
        self.freeze()

    def compute_flow(self, img1: Tensor, img2: Tensor) -> Tensor:
        low, high = self.input_range
        imgs = torch.cat([img1, img2]) / 255.0 * (high - low) + low
        imgs, h, w = pad_to_multiple(imgs, self.size_divisor)
        img1, img2 = imgs.chunk(2)
        flow = self.model(img1, img2)
        if isinstance(flow, (list, tuple)):
            flow = flow[-1]
        return flow[..., :h, :w]
