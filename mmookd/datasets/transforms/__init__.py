# Copyright (c) mmookd contributors. All rights reserved.
from .clip_padding import PadClipFrames
from .frame_sampling import (
    ClipFrameSample,
    KeyRefClipSample,
    KeyRefFrameSample,
)
from .instance_filter import FilterEmptyInstances
from .minor_paste import MinorPaste
from .pseudo_key_ref import PseudoKeyRefPair

__all__ = [
    'KeyRefFrameSample', 'ClipFrameSample', 'KeyRefClipSample', 'MinorPaste',
    'PseudoKeyRefPair', 'FilterEmptyInstances', 'PadClipFrames'
]
