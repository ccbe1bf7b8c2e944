# Copyright (c) mmookd contributors. All rights reserved.
from .checker import CheckReport, check_vis_dataset
from .coco_pseudo_video import CocoPseudoVideoDataset
from .transforms import *  # noqa: F401,F403
from .transforms.loading import LoadVISFrame
from .ytvis import VISDataError, YTVISDataset

__all__ = [
    'YTVISDataset', 'CocoPseudoVideoDataset', 'VISDataError', 'LoadVISFrame',
    'CheckReport', 'check_vis_dataset'
]
