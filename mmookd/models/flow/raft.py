# Copyright (c) mmookd contributors. All rights reserved.
"""RAFT (Teed & Deng, ECCV 2020) from torchvision, with local weights."""
from typing import Dict

import torch
from mmdet.registry import MODELS
from torch import Tensor

from .flow_provider import BaseFlowProvider, check_local_file, pad_to_multiple

__all__ = ['RAFTFlowProvider']

_HINT = ('For torchvision RAFT, save the state dict of e.g. '
         '`torchvision.models.optical_flow.raft_small(weights='
         '"Raft_Small_Weights.C_T_V2")` (or the `.pth` file its weights '
         'enum points to) and give its path.')


def _state_dict(obj) -> Dict[str, Tensor]:
    """A state dict from a raw state dict or a training checkpoint."""
    if isinstance(obj, dict):
        for key in ('state_dict', 'model'):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        return obj
    raise TypeError(f'expected a state dict, got {type(obj).__name__}')


@MODELS.register_module()
class RAFTFlowProvider(BaseFlowProvider):
    """torchvision's ``raft_small`` / ``raft_large`` with local weights.

    The architecture is built without weights (``weights=None``, nothing
    downloaded) and the state dict is loaded strictly from ``checkpoint``.
    Inputs are mapped from ``[0, 255]`` to ``[-1, 1]`` (torchvision's
    ``OpticalFlow`` preset) and replicate-padded to multiples of 8; the
    last of the ``num_flow_updates`` predictions is returned.

    Args:
        checkpoint (str): Local state-dict file (raw, or under
            ``state_dict`` / ``model``).
        arch (str): ``'raft_small'`` or ``'raft_large'``. Defaults to
            ``'raft_small'`` (the smaller memory footprint).
        num_flow_updates (int): GRU iterations (torchvision's default 12).
    """

    def __init__(self,
                 checkpoint: str,
                 arch: str = 'raft_small',
                 num_flow_updates: int = 12) -> None:
        super().__init__()
        if arch not in ('raft_small', 'raft_large'):
            raise ValueError("arch must be 'raft_small' or 'raft_large', "
                             f'got {arch!r}')
        check_local_file(checkpoint, 'RAFTFlowProvider', _HINT)
        try:
            from torchvision.models import optical_flow
        except ImportError as err:  # pragma: no cover - env dependent
            raise ImportError(
                'RAFTFlowProvider needs torchvision (a build matching the '
                'installed torch). Without it, export RAFT to TorchScript '
                'where torchvision is installed and use '
                'TorchScriptFlowProvider.') from err
        self.model = getattr(optical_flow, arch)(weights=None)
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
        self.model.load_state_dict(_state_dict(state), strict=True)
        self.arch = arch
        self.num_flow_updates = int(num_flow_updates)
        self.freeze()

    def compute_flow(self, img1: Tensor, img2: Tensor) -> Tensor:
        imgs = torch.cat([img1, img2]) / 127.5 - 1.0
        imgs, h, w = pad_to_multiple(imgs, 8)
        img1, img2 = imgs.chunk(2)
        preds = self.model(
            img1.contiguous(),
            img2.contiguous(),
            num_flow_updates=self.num_flow_updates)
        return preds[-1][..., :h, :w]
