# Copyright (c) mmookd contributors. All rights reserved.
"""Classical optical flow from OpenCV (DIS, Farneback): no weights at all.

The flow source for machines where no flow network can be installed or
loaded (no torchvision, no internet): OpenCV ships with mmcv's
dependencies. DIS (Kroeger et al., ECCV 2016) is the default: dense,
fast on CPU and much closer to learned flow on textured or coloured
objects than zero or box flow. It is weaker than RAFT on real video
(large motion, textureless regions), so report which provider produced
a TC number.
"""
import cv2
import numpy as np
import torch
from mmdet.registry import MODELS
from torch import Tensor

from .flow_provider import BaseFlowProvider

__all__ = ['OpenCVFlowProvider']

_DIS_PRESETS = {
    'ultrafast': cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    'fast': cv2.DISOPTICAL_FLOW_PRESET_FAST,
    'medium': cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@MODELS.register_module()
class OpenCVFlowProvider(BaseFlowProvider):
    """Dense flow ``img1 -> img2`` from OpenCV on grey images, per pair.

    Same interface and convention as every provider
    (:mod:`mmookd.models.flow.flow_provider`): ``[0, 255]`` RGB in,
    ``(N, 2, H, W)`` pixel displacements out; it runs on the CPU (inputs
    on another device are copied there and the flow copied back).

    Args:
        method (str): ``'dis'`` or ``'farneback'``. Defaults to ``'dis'``.
        preset (str): DIS preset, ``'ultrafast'``, ``'fast'`` or
            ``'medium'``. Defaults to ``'medium'``.
    """

    def __init__(self, method: str = 'dis', preset: str = 'medium') -> None:
        super().__init__()
        if method not in ('dis', 'farneback'):
            raise ValueError("method must be 'dis' or 'farneback', got "
                             f'{method!r}')
        if preset not in _DIS_PRESETS:
            raise ValueError(f'preset must be one of {sorted(_DIS_PRESETS)}'
                             f', got {preset!r}')
        self.method = method
        self.preset = preset

    @staticmethod
    def _grey(img: Tensor) -> np.ndarray:
        rgb = img.detach().clamp(0, 255).permute(1, 2, 0).cpu().numpy()
        return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY)

    def _pair_flow(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        if self.method == 'dis':
            # a new instance per pair: DIS keeps no state we rely on and
            # this keeps the provider safe to share between threads.
            dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[self.preset])
            return dis.calc(prev, nxt, None)
        return cv2.calcOpticalFlowFarneback(
            prev,
            nxt,
            None,
            pyr_scale=0.5,
            levels=3,
            winsize=15,
            iterations=3,
            poly_n=5,
            poly_sigma=1.2,
            flags=0)

    def compute_flow(self, img1: Tensor, img2: Tensor) -> Tensor:
        if img1.size(1) != 3:
            raise ValueError('OpenCVFlowProvider expects RGB images '
                             f'(N, 3, H, W), got {tuple(img1.shape)}')
        flows = [
            torch.from_numpy(self._pair_flow(self._grey(a), self._grey(b)))
            for a, b in zip(img1, img2)
        ]
        return torch.stack(flows).permute(0, 3, 1, 2).to(img1.device)
