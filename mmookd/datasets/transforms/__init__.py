# Copyright (c) mmookd contributors. All rights reserved.
from .frame_sampling import (
    ClipFrameSample,
    KeyRefClipSample,
    KeyRefFrameSample,
)
from .minor_paste import MinorPaste

__all__ = [
    'KeyRefFrameSample', 'ClipFrameSample', 'KeyRefClipSample', 'MinorPaste'
]
