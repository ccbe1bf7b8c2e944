# Copyright (c) mmookd contributors. All rights reserved.
"""Network-free, instance-level flow from box motion [DESIGN]."""
from typing import Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = ['BoxFlowProvider']


@MODELS.register_module()
class BoxFlowProvider(nn.Module):
    """Per-instance flow of the affine map taking box ``t`` onto box ``t'``.

    A flow-free source for the *instance* version of the motion-guided temporal
    loss (docs/companion_losses.md, ``MotionGuidedTemporalLoss``; no flow-free
    L_TL was released, so this is our design): instance ``k``'s pixel ``p`` of
    frame ``t`` moves to ``c'_k + (p - c_k) * (w'_k / w_k, h'_k / h_k)`` in
    frame ``t'``, where ``c``, ``w``, ``h`` are the centre and size of its box
    (from the ground truth or the predictions of both frames). It models
    translation and scaling of the whole instance, not articulation or
    rotation; outside the box it extrapolates the same affine map, which only
    matters where the instance's masks are.

    ``provider(boxes, boxes_ref, size, stride) -> (K, 2, h, w)``: the
    flow in pixels of an ``(h, w)`` grid whose pixel ``i`` covers image
    coordinates ``[i * stride, (i + 1) * stride)``, the convention of
    :func:`mmookd.models.flow.warp`.

    Args:
        min_size (float): Box sides are clamped to at least this many image
            pixels. Defaults to 1.0.
    """

    #: what :meth:`forward` takes: matched boxes of the two frames
    input_type = 'boxes'

    def __init__(self, min_size: float = 1.0) -> None:
        super().__init__()
        self.min_size = float(min_size)

    @torch.no_grad()
    def forward(self,
                boxes: Tensor,
                boxes_ref: Tensor,
                size: Tuple[int, int],
                stride: float = 1.0) -> Tensor:
        """Flow ``t -> t'`` of each instance.

        Args:
            boxes (Tensor): (K, 4) xyxy image-pixel boxes in frame ``t``.
            boxes_ref (Tensor): (K, 4) the same instances in frame ``t'``.
            size (tuple[int, int]): (h, w) of the flow grid.
            stride (float): Image pixels per grid pixel.

        Returns:
            Tensor: (K, 2, h, w) float32 flow in grid pixels.
        """
        boxes, boxes_ref = boxes.float(), boxes_ref.float()
        h, w = size
        ys = (torch.arange(h, device=boxes.device) + 0.5) * stride
        xs = (torch.arange(w, device=boxes.device) + 0.5) * stride

        def centre_size(b: Tensor) -> Tuple[Tensor, Tensor]:
            centre = (b[:, :2] + b[:, 2:]) / 2
            return centre, (b[:, 2:] - b[:, :2]).clamp_min(self.min_size)

        c, s = centre_size(boxes)
        c_ref, s_ref = centre_size(boxes_ref)
        ratio = s_ref / s  # (K, 2)
        # displacement in image pixels, separable in x and y
        flow_x = c_ref[:, :1] + (xs - c[:, :1]) * ratio[:, :1] - xs  # (K, w)
        flow_y = c_ref[:, 1:] + (ys - c[:, 1:]) * ratio[:, 1:] - ys  # (K, h)
        flow_x = flow_x[:, None, :].expand(-1, h, -1)
        flow_y = flow_y[:, :, None].expand(-1, -1, w)
        return torch.stack([flow_x, flow_y], 1).contiguous() / stride
