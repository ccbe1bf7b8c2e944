# Copyright (c) mmookd contributors. All rights reserved.
from .idol import IDOL, IDOLStreamState
from .mask2former_vis_teacher import Mask2FormerVISTeacher
from .offline_teacher import ClipTargets, OfflineTeacher
from .ookd import OOKD, build_frozen_teacher

__all__ = [
    'IDOL', 'IDOLStreamState', 'ClipTargets', 'OfflineTeacher', 'OOKD',
    'build_frozen_teacher', 'Mask2FormerVISTeacher'
]
