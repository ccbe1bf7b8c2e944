# Copyright (c) mmookd contributors. All rights reserved.
"""User-facing inference: streaming, frame-by-frame video instance
segmentation (``from mmookd.apis import StreamingVISInferencer``), and
OOKD's offline knowledge bank (``build_knowledge_bank``)."""
from .inference import (
    FrameResult,
    FrameSource,
    StreamingVISInferencer,
    frame_test_pipeline,
    init_vis_model,
    open_frame_source,
)
from .knowledge_bank import build_knowledge_bank

__all__ = [
    'FrameResult', 'FrameSource', 'StreamingVISInferencer',
    'frame_test_pipeline', 'init_vis_model', 'open_frame_source',
    'build_knowledge_bank'
]
