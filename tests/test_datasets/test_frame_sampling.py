# Copyright (c) mmookd contributors. All rights reserved.
import random
from collections import Counter

import pytest
from mmdet.registry import TRANSFORMS

from mmookd.datasets.transforms import (
    ClipFrameSample,
    KeyRefClipSample,
    KeyRefFrameSample,
)


def video_infos(length: int, key_frame_id=None) -> dict:
    """What ``BaseVideoDataset.prepare_data`` hands to the pipeline."""
    info = dict(
        video_id=7,
        video_length=length,
        images=[
            dict(
                img_id=100 + i,
                img_path=f'v/{i:05d}.jpg',
                height=32,
                width=48,
                frame_id=i,
                video_id=7,
                instances=[dict(instance_id=1, bbox_label=0)])
            for i in range(length)
        ],
        sample_idx=0)
    if key_frame_id is not None:
        info['key_frame_id'] = key_frame_id
    return info


def draw(sampler, length, key_frame_id=None, n=1000, seed=0):
    random.seed(seed)
    return [
        sampler(video_infos(length, key_frame_id))['frame_id']
        for _ in range(n)
    ]


def test_registered_and_output_format():
    sampler = TRANSFORMS.build(dict(type='KeyRefFrameSample', frame_range=3))
    assert isinstance(sampler, KeyRefFrameSample)
    assert isinstance(
        TRANSFORMS.build(dict(type='ClipFrameSample')), ClipFrameSample)
    random.seed(0)
    out = sampler(video_infos(20))
    # every key is a per-frame list of the same length (TransformBroadcaster)
    assert all(isinstance(v, list) and len(v) == 2 for v in out.values())
    assert out['key_frame_flags'] == [True, False]
    assert out['video_length'] == [2, 2]
    assert out['ori_video_length'] == [20, 20]
    assert out['video_id'] == [7, 7]
    assert out['img_id'] == [100 + f for f in out['frame_id']]
    assert 'sample_idx' not in out
    assert 'frame_range=[-3, 3]' in repr(sampler)


@pytest.mark.parametrize('frame_range', [10, 3])
def test_key_ref_pairs(frame_range):
    sampler = KeyRefFrameSample(frame_range=frame_range)
    pairs = draw(sampler, 30)
    for key, ref in pairs:
        assert 0 <= key < ref < 30
        assert 1 <= ref - key <= frame_range
    gaps = Counter(ref - key for key, ref in pairs)
    assert set(gaps) == set(range(1, frame_range + 1))


def test_key_ref_honours_key_frame_id_and_covers_window():
    sampler = KeyRefFrameSample(frame_range=10)
    pairs = draw(sampler, 30, key_frame_id=15)
    others = Counter()
    for key, ref in pairs:
        assert 15 in (key, ref)
        others[ref if key == 15 else key] += 1
    assert set(others) == set(range(5, 26)) - {15}
    # roughly uniform: 1000 draws over 20 frames
    assert min(others.values()) > 20
    # clipped at the border
    pairs = draw(sampler, 30, key_frame_id=0, n=500)
    assert {ref for _, ref in pairs} == set(range(1, 11))
    assert {key for key, _ in pairs} == {0}
    pairs = draw(sampler, 4, key_frame_id=3, n=300)
    assert {key for key, _ in pairs} == {0, 1, 2}


def test_key_ref_edge_cases():
    sampler = KeyRefFrameSample()
    out = sampler(video_infos(1))
    assert out['frame_id'] == [0, 0]
    assert out['key_frame_flags'] == [True, False]
    # the repeated frame is a copy, not the same object
    assert out['instances'][0] is not out['instances'][1]
    assert draw(sampler, 2, n=50) == [[0, 1]] * 50
    # asymmetric range: only later frames, nearest neighbour at the end
    forward = KeyRefFrameSample(frame_range=[0, 2])
    for key, ref in draw(forward, 10, n=200):
        assert 1 <= ref - key <= 2
    assert draw(forward, 10, key_frame_id=9, n=5) == [[8, 9]] * 5
    with pytest.raises(ValueError, match='key_frame_id'):
        sampler(video_infos(5, key_frame_id=5))
    for bad in (0, [1, 2], [0, 0], [-1, -1]):
        with pytest.raises(ValueError, match='frame_range'):
            KeyRefFrameSample(frame_range=bad)
    with pytest.raises(TypeError):
        KeyRefFrameSample(frame_range=2.5)


@pytest.mark.parametrize('with_replacement', [True, False])
def test_clip_frames(with_replacement):
    sampler = ClipFrameSample(
        num_frames=4, frame_range=5, with_replacement=with_replacement)
    random.seed(1)
    seen = Counter()
    dup = 0
    for _ in range(1000):
        out = sampler(video_infos(30, key_frame_id=12))
        frames = out['frame_id']
        assert len(frames) == 4 and frames == sorted(frames)
        assert all(7 <= f <= 17 for f in frames)
        assert 12 in frames
        flags = out['key_frame_flags']
        assert flags.count(True) == 1
        assert frames[flags.index(True)] == 12
        assert out['video_length'] == [4] * 4
        assert out['ori_video_length'] == [30] * 4
        dup += len(set(frames)) < 4
        seen.update(f for f in frames)
    assert set(seen) == set(range(7, 18))
    if with_replacement:
        assert dup > 0
    else:
        assert dup == 0


def test_clip_edge_cases():
    random.seed(0)
    out = ClipFrameSample(num_frames=3)(video_infos(1))
    assert out['frame_id'] == [0, 0, 0]
    assert out['key_frame_flags'] == [True, False, False]
    # window smaller than T-1 without replacement: use it all, then repeat
    no_rep = ClipFrameSample(num_frames=5, with_replacement=False)
    for _ in range(50):
        frames = no_rep(video_infos(3))['frame_id']
        assert set(frames) == {0, 1, 2} and frames == sorted(frames)
    assert ClipFrameSample(num_frames=1)(video_infos(
        9, key_frame_id=4))['frame_id'] == [4]
    # random anchors stay inside the video
    clip = ClipFrameSample(num_frames=6, frame_range=2)
    for frames in draw(clip, 8, n=300):
        assert 0 <= frames[0] and frames[-1] < 8
        assert frames[-1] - frames[0] <= 4
    with pytest.raises(ValueError, match='num_frames'):
        ClipFrameSample(num_frames=0)


def test_key_ref_clip_sample_for_ookd():
    """[key, ref, context...]: the pair is IDOL's, the context lies within
    the range of the key, and only the key is flagged."""
    sampler = TRANSFORMS.build(
        dict(type='KeyRefClipSample', num_frames=4, frame_range=3))
    random.seed(0)
    for _ in range(300):
        out = sampler(video_infos(30))
        key, ref, *context = out['frame_id']
        assert out['key_frame_flags'] == [True, False, False, False]
        assert out['video_length'] == [4] * 4
        assert 0 <= key < ref <= key + 3
        assert len(context) == 2 and context == sorted(context)
        assert all(1 <= abs(c - key) <= 3 for c in context)
    # a 1-frame video repeats its only frame
    assert sampler(video_infos(1))['frame_id'] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match='num_frames'):
        KeyRefClipSample(num_frames=1)
