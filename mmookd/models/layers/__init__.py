# Copyright (c) mmookd contributors. All rights reserved.
"""Layers: host-sync free deformable attention for fast inference."""
from .static_shape_attention import (
    StaticShapeMSDeformAttn,
    encoder_reference_points,
    ms_deform_attn,
    ms_deform_attn_pytorch,
    use_static_shape_attention,
)

__all__ = [
    'StaticShapeMSDeformAttn', 'encoder_reference_points', 'ms_deform_attn',
    'ms_deform_attn_pytorch', 'use_static_shape_attention'
]
