# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's cosine KD through a learned projection (FitNets-style), for a
teacher whose feature space is not the student's (issue #17).

FitNets (Romero et al., ICLR 2015) trains a regressor on the student's
features to the teacher's width and space; only the student keeps its
network at test time. Here the regressor is part of the KD loss: the
student's matched embeddings ``f`` go through ``proj`` and eq. 4 is taken
against the teacher's ``f_off``:

    L_KD = (1/M) sum_m (1 - cos(f_off_m, proj(f_m)))

The projection is a submodule of the loss, so it is a parameter of the
student model (in the optimiser, trained by L_KD only, saved in training
checkpoints so a resumed run continues it) and nowhere in the student's
inference. :func:`mmookd.apis.export_student` drops it (``loss_kd.*``)
from the exported checkpoint, which then loads strictly into plain IDOL.
"""
from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor, nn

from .cosine_kd_loss import CosineKDLoss

__all__ = ['ProjectedCosineKDLoss']


@MODELS.register_module()
class ProjectedCosineKDLoss(CosineKDLoss):
    """:class:`CosineKDLoss` on ``proj(student)`` vs ``teacher``.

    Args:
        in_channels (int): Student embedding width.
        out_channels (int): Teacher embedding width.
        hidden_channels (int, optional): One hidden layer (ReLU) of this
            width; None (default): a single linear layer (FitNets'
            regressor on vectors).
        **kwargs: :class:`CosineKDLoss`'s arguments (``loss_weight`` is
            lambda_4, ``reduction``, ``detach_target``).
    """

    # marks modules that exist for training only (dropped on export)
    training_only = True

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 hidden_channels: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        if hidden_channels is None:
            self.proj = nn.Linear(in_channels, out_channels)
        else:
            self.proj = nn.Sequential(
                nn.Linear(in_channels, hidden_channels), nn.ReLU(inplace=True),
                nn.Linear(hidden_channels, out_channels))

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        """Args as :meth:`CosineKDLoss.forward`; ``pred`` (M, in_channels),
        ``target`` (M, out_channels)."""
        if pred.size(-1) != self.in_channels or \
                target.size(-1) != self.out_channels:
            raise ValueError(
                f'ProjectedCosineKDLoss maps {self.in_channels} -> '
                f'{self.out_channels} channels, got student '
                f'{tuple(pred.shape)} and teacher {tuple(target.shape)}: set '
                'in_channels to the student embedding width and '
                "out_channels to the teacher's")
        return super().forward(
            self.proj(pred.to(self.proj_dtype())), target, **kwargs)

    def proj_dtype(self):
        return next(self.proj.parameters()).dtype
