# Copyright (c) mmookd contributors. All rights reserved.
from .cosine_kd_loss import CosineKDLoss
from .cosine_l2_aux_loss import CosineL2AuxLoss

__all__ = ['CosineL2AuxLoss', 'CosineKDLoss']
