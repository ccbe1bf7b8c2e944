# Copyright (c) mmookd contributors. All rights reserved.
from .frame_sampling import ClipFrameSample, KeyRefFrameSample

__all__ = ['KeyRefFrameSample', 'ClipFrameSample']
