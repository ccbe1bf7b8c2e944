# Copyright (c) mmookd contributors. All rights reserved.
"""tools/analysis/track_strip.py: predicted tracks take the colour of the
ground-truth instance they match, the strip and the video are new 0644
files that are never overwritten."""
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch

from mmookd.utils import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
strip = load_tool(
    osp.join(REPO, 'tools/analysis/track_strip.py'), 'track_strip')


def _square(y, x, size=20, shape=(64, 96)):
    mask = np.zeros(shape, np.uint8)
    mask[y:y + size, x:x + size] = 1
    return mask


def _result(t, ids, masks, score=0.9):
    return strip._frame_result(t, ids, [0] * len(ids), ['circle'] * len(ids),
                               np.full(len(ids), score, np.float32), masks,
                               (64, 96))


def test_matched_tracks_take_their_instances_colour():
    # two instances moving right; the model tracks instance 1 as track 7,
    # instance 2 as track 3 for three frames, then as a new track 9 (an
    # identity switch), and sees a false object as track 5
    gt, pred = [], []
    for t in range(4):
        a, b = _square(20, 2 + 4 * t), _square(40, 60 - 4 * t, 22)
        gt.append(_result(t, [1, 2], [a, b], 1.0))
        ids = [7, 3 if t < 3 else 9, 5]
        pred.append(_result(t, ids, [a, b, _square(0, 90, 4)]))
    matches = strip.match_tracks(pred, gt)
    assert matches == {7: 1, 3: 2}  # 9 overlaps instance 2 less than 3
    ids = strip.display_ids(pred, matches, first_free=3)
    assert ids == {7: 1, 3: 2, 5: 3, 9: 4}
    frame = np.full((64, 96, 3), 40, np.uint8)
    for t in range(2):
        drawn_gt = strip.draw(frame, gt[t])
        drawn = strip.draw(frame, strip.relabel(pred[t], ids))
        # inside each instance (away from the outline and the label above
        # it) the same colour
        for y, x in ((32, 12 + 4 * t), (55, 70 - 4 * t)):
            assert (drawn[y, x] == drawn_gt[y, x]).all()
            assert (drawn[y, x] != frame[y, x]).any()
    # after the switch instance 2 is drawn in another colour
    later = strip.draw(frame, strip.relabel(pred[3], ids))
    assert (later[55, 58] != strip.draw(frame, gt[3])[55, 58]).any()
    # scaling draws the same colours at the scaled places
    big = strip.draw(frame, strip.relabel(pred[0], ids), scale=2.0)
    assert big.shape == (128, 192, 3)
    assert (big[64, 24] == strip.draw(frame, gt[0])[32, 12]).all()
    assert strip.pick_frames(10, 4) == [0, 3, 6, 9]
    assert strip.pick_frames(2, 6) == [0, 1]


def test_strip_and_video_of_a_tiny_video(tiny_toyvis, tmp_path):
    ckpt = osp.join(REPO, 'checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth')
    config = osp.join(REPO, 'configs/toy/ookd_r18-tiny_1xb2-toyvis_no-kd.py')
    ann = osp.join(tiny_toyvis, 'annotations', 'toyvis_long_val.json')
    video_id = strip.video_with_most_instances(ann)
    out, out_video = tmp_path / 'strip.png', tmp_path / 'student.mp4'
    old_umask, threads = os.umask(0o022), torch.get_num_threads()
    torch.set_num_threads(1)
    calls = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            info = strip.make_strip(
                config, [ckpt, ckpt], ['a', 'b'],
                str(out),
                ann_file=ann,
                img_dir=osp.join(tiny_toyvis, 'long_val', 'JPEGImages'),
                video_id=video_id,
                num_frames=3,
                scale=1.0,
                out_video=str(out_video),
                progress=lambda done, total: calls.append((done, total)))
    finally:
        os.umask(old_umask)
        torch.set_num_threads(threads)
    num_frames = calls[-1][1] // 2
    assert calls[-1] == (2 * num_frames, 2 * num_frames)
    assert info['frame_ids'][0] == 0 and len(info['frame_ids']) == 3
    # same weights, same tracks, same colours in both rows
    a, b = info['models']
    assert a['ids'] == b['ids'] and a['matches'] == b['matches']
    assert all(a['ids'][t] == g for t, g in a['matches'].items())
    image = cv2.imread(str(out))
    frames = strip.load_video(ann,
                              osp.join(tiny_toyvis, 'long_val', 'JPEGImages'),
                              video_id)['frames']
    th, tw = frames[0].shape[:2]
    # ground truth, a, b: a title band (24 px) above each row, 4 px gaps
    assert image.shape == (3 * (24 + th) + 4, 3 * tw + 2 * 4, 3)
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == num_frames
    cap.release()
    for path in (out, out_video):
        assert oct(path.stat().st_mode & 0o777) == '0o644'
    assert not [p for p in os.listdir(tmp_path) if 'partial' in p]
    with pytest.raises(FileExistsError, match='strip.png exists already'):
        strip.make_strip(
            config, [ckpt], ['a'],
            str(out),
            ann_file=ann,
            img_dir='x',
            video_id=video_id)
