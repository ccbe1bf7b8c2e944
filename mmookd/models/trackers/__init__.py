# Copyright (c) mmookd contributors. All rights reserved.
from .idol_tracker import (
    IDOLTracker,
    filter_frame_detections,
    greedy_assign,
    greedy_nms_from_iou,
    mask_iou_matrix,
)
from .minvis_tracker import MinVISTracker
from .tensor_idol_tracker import TensorIDOLTracker, TrackDecision
from .video_assembler import VideoTrackAssembler

__all__ = [
    'IDOLTracker', 'MinVISTracker', 'TensorIDOLTracker', 'TrackDecision',
    'VideoTrackAssembler', 'filter_frame_detections', 'greedy_assign',
    'greedy_nms_from_iou', 'mask_iou_matrix'
]
