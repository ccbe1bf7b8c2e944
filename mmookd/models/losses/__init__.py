# Copyright (c) mmookd contributors. All rights reserved.
from .cka_loss import AttentionCKALoss
from .cosine_kd_loss import CosineKDLoss
from .cosine_l2_aux_loss import CosineL2AuxLoss
from .cross_frame_affinity_loss import CrossFrameAffinityDistillLoss
from .object_relation_loss import InterIntraObjectDistillLoss
from .pairwise_similarity_loss import PairwiseSimilarityDistillLoss
from .pixel_kd_loss import PixelKLDistillLoss
from .projected_kd_loss import ProjectedCosineKDLoss
from .temporal_loss import (
    InstanceTemporalConsistencyLoss,
    MotionGuidedTemporalLoss,
)

__all__ = [
    'CosineL2AuxLoss', 'CosineKDLoss', 'AttentionCKALoss',
    'CrossFrameAffinityDistillLoss', 'InterIntraObjectDistillLoss',
    'PairwiseSimilarityDistillLoss', 'PixelKLDistillLoss',
    'InstanceTemporalConsistencyLoss', 'MotionGuidedTemporalLoss',
    'ProjectedCosineKDLoss'
]
