# Copyright (c) mmookd contributors. All rights reserved.
"""Optical-flow sources and warping for paper A's temporal loss and TC."""
from .box_flow import BoxFlowProvider
from .flow_provider import (
    BaseFlowProvider,
    TorchScriptFlowProvider,
    ZeroFlowProvider,
)
from .opencv_flow import OpenCVFlowProvider
from .raft import RAFTFlowProvider
from .warp import fb_consistency_mask, photometric_occlusion, resize_flow, warp

__all__ = [
    'BaseFlowProvider', 'BoxFlowProvider', 'OpenCVFlowProvider',
    'RAFTFlowProvider', 'TorchScriptFlowProvider', 'ZeroFlowProvider', 'warp',
    'resize_flow', 'photometric_occlusion', 'fb_consistency_mask'
]
