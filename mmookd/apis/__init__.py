# Copyright (c) mmookd contributors. All rights reserved.
"""User-facing inference: streaming, frame-by-frame video instance
segmentation (``from mmookd.apis import StreamingVISInferencer``)."""
from .inference import (
    FrameResult,
    FrameSource,
    StreamingVISInferencer,
    frame_test_pipeline,
    init_vis_model,
    open_frame_source,
)

__all__ = [
    'FrameResult', 'FrameSource', 'StreamingVISInferencer',
    'frame_test_pipeline', 'init_vis_model', 'open_frame_source'
]
