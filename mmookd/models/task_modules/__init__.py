# Copyright (c) mmookd contributors. All rights reserved.
from .contrastive_selector import (
    ContrastiveSelector,
    contrastive_loss_inputs,
    pos_neg_masks,
)
from .dynamic_k_assigner import DynamicKAssigner, dynamic_k_matching
from .qfa_assigner import QFAAssigner, QFAResult

__all__ = [
    'DynamicKAssigner', 'dynamic_k_matching', 'ContrastiveSelector',
    'contrastive_loss_inputs', 'pos_neg_masks', 'QFAAssigner', 'QFAResult'
]
