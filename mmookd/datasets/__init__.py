# Copyright (c) mmookd contributors. All rights reserved.
from .coco_pseudo_video import CocoPseudoVideoDataset
from .transforms import *  # noqa: F401,F403
from .ytvis import YTVISDataset

__all__ = ['YTVISDataset', 'CocoPseudoVideoDataset']
