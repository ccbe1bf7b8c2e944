# Copyright (c) mmookd contributors. All rights reserved.
"""Model utilities: recorders of intermediate tensors and attention maps."""
from .attention_maps import (
    attention_cells_by_columns,
    rasterize_deformable_attention,
)
from .attention_recorder import (
    DECODER_CROSS_ATTN,
    DeformableAttentionRecorder,
    MethodOutputsRecorder,
)
from .knowledge_bank import KnowledgeBank, KnowledgeBankError

__all__ = [
    'DeformableAttentionRecorder', 'MethodOutputsRecorder',
    'DECODER_CROSS_ATTN', 'rasterize_deformable_attention',
    'attention_cells_by_columns', 'KnowledgeBank', 'KnowledgeBankError'
]
