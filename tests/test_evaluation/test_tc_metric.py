# Copyright (c) mmookd contributors. All rights reserved.
"""Temporal consistency (paper A's TC) of predicted track masks, with a
pluggable flow provider; reported beside YouTube-VIS AP."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.registry import METRICS, MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import InstanceData

import mmookd  # noqa: F401
from mmookd.evaluation.functional import pair_track_ious
from mmookd.models.flow import BaseFlowProvider

SHIFT = 3  # pixels per frame, to the right


@MODELS.register_module(force=True)
class _ConstantFlow(BaseFlowProvider):
    """The true flow of the synthetic videos: (+dx, 0); backwards for an
    image pair given in reverse (the second frame is the earlier one)."""

    def __init__(self, dx: float = SHIFT):
        super().__init__()
        self.dx = dx

    def compute_flow(self, img1, img2):
        sign = 1.0 if img1.mean() <= img2.mean() else -1.0
        flow = img1.new_zeros(img1.size(0), 2, *img1.shape[2:])
        flow[:, 0] = sign * self.dx
        return flow


def square(h, w, x0, y0=6, size=8):
    m = np.zeros((h, w), np.uint8)
    m[y0:y0 + size, x0:x0 + size] = 1
    return m


def test_pair_ious_follow_the_flow():
    a = torch.from_numpy(square(24, 32, 8)).bool()
    b = torch.from_numpy(square(24, 32, 8 + SHIFT)).bool()
    true_flow = torch.zeros(2, 24, 32)
    true_flow[0] = SHIFT
    assert pair_track_ious({1: a}, {1: b}, true_flow) == [1.0]
    assert pair_track_ious({1: a}, {1: b}, true_flow,
                           flow_back=-true_flow) == [1.0]
    zero = torch.zeros(2, 24, 32)
    (iou, ) = pair_track_ious({1: a}, {1: b}, zero)
    assert iou == pytest.approx(5 / 11)  # 5 of 8 columns overlap, 11 union
    # a track in one frame only is a flicker: IoU 0; empty ids are skipped
    assert pair_track_ious({1: a, 2: a}, {1: b}, true_flow) == [1.0, 0.0]
    assert pair_track_ious({}, {}, zero) == []


def make_video(video_id, num_frames=3, h=24, w=32, ori_scale=2):
    """Frames brighten over time (so _ConstantFlow can tell the direction)
    and a square moves SHIFT pixels right per frame; masks are RLEs at
    the original size (ori_scale x the network input)."""
    imgs, frames = [], []
    for t in range(num_frames):
        img = np.full((3, h, w), 10 * t, np.uint8)
        imgs.append(torch.from_numpy(img))
        mask = square(h, w, 4 + SHIFT * t)
        big = np.kron(mask, np.ones((ori_scale, ori_scale), np.uint8))
        rle = mask_util.encode(np.asfortranarray(big[..., None]))
        sample = DetDataSample(
            metainfo=dict(
                video_id=video_id,
                frame_id=t,
                ori_video_length=num_frames,
                img_shape=(h, w),
                ori_shape=(h * ori_scale, w * ori_scale)))
        sample.pred_track_instances = InstanceData(
            instances_id=torch.tensor([7]),
            scores=torch.tensor([0.9]),
            labels=torch.tensor([0]),
            masks=rle)
        frames.append(sample)
    track = TrackDataSample()
    track.video_data_samples = frames
    return torch.stack(imgs), track


@pytest.mark.parametrize('flow,expected', [('_ConstantFlow', 100.0),
                                           ('ZeroFlowProvider', 500 / 11)])
def test_metric_on_videos_and_frames(flow, expected):
    for occlusion in ('fb', 'none'):
        metric = METRICS.build(
            dict(
                type='TemporalConsistencyMetric',
                flow=dict(type=flow),
                occlusion=occlusion,
                device='cpu'))
        imgs, track = make_video(1)
        metric.process(dict(inputs=[imgs]), [track.to_dict()])
        res = metric.evaluate(1)
        assert res['tc/TC'] == pytest.approx(expected, rel=1e-5)
    # frame by frame (image-based sampling): the same pairs
    metric = METRICS.build(
        dict(type='TemporalConsistencyMetric', flow=dict(type=flow)))
    imgs, track = make_video(2)
    for t in range(len(track)):
        one = TrackDataSample()
        one.video_data_samples = [track[t]]
        metric.process(dict(inputs=[imgs[t:t + 1]]), [one])
    assert metric.evaluate(1)['tc/TC'] == pytest.approx(expected, rel=1e-5)


def test_metric_subsets_like_ytvis_2022(tmp_path):
    files = {}
    for name, ids in (('short', [1, 2]), ('long', [3])):
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(dict(videos=[dict(id=i) for i in ids])))
        files[name] = str(path)
    metric = METRICS.build(
        dict(
            type='TemporalConsistencyMetric',
            flow=dict(type='_ConstantFlow'),
            ann_file=files))
    for video_id in (1, 2, 3):
        imgs, track = make_video(video_id)
        if video_id == 3:  # the long subset flickers: a zero-flow miss
            metric.flow_cfg = dict(type='ZeroFlowProvider')
            metric._provider = None
        metric.process(dict(inputs=[imgs]), [track])
    res = metric.evaluate(3)
    assert res['tc/TC_short'] == pytest.approx(100.0)
    assert res['tc/TC_long'] == pytest.approx(500 / 11, rel=1e-5)
    assert res['tc/TC'] == pytest.approx((100 + 500 / 11) / 2, rel=1e-5)
