# Copyright (c) mmookd contributors. All rights reserved.
"""tools/demo/video_demo.py: a playable mp4 with the source's frame count
and fps, results JSON and mask PNGs, no silent overwrites, clear errors;
on real footage (Debian's opencv-doc videos) when installed."""
import json
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch

from mmookd.utils import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
OPENCV_DATA = '/usr/share/doc/opencv-doc/examples/data'
NEEDS_OPENCV_DOC = pytest.mark.skipif(
    not osp.isfile(osp.join(OPENCV_DATA, 'vtest.avi')),
    reason='real test videos missing: Debian package opencv-doc is not '
    'installed (apt-get install --no-install-recommends opencv-doc)')
# random weights: open the thresholds so something is drawn and tracked
OPEN = [
    '--cfg-options', 'model.test_cfg.select_thr=0',
    'model.tracker.init_score_thr=0', 'model.tracker.addnew_score_thr=0',
    'model.assembler.apply_cls_thres=0'
]


def _load_demo():
    return load_tool(osp.join(REPO, 'tools/demo/video_demo.py'), 'video_demo')


demo = _load_demo()


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def _run(*args):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        demo.main([str(a) for a in args] + ['--device', 'cpu'])


def _read_video(path):
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = 0
    shape = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        shape = frame.shape
    cap.release()
    return count, fps, frames, shape


def _write_video(path, num_frames, fps, hw=(72, 96)):
    h, w = hw
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    rng = np.random.RandomState(0)
    background = rng.randint(0, 90, (h, w, 3)).astype(np.uint8)
    for t in range(num_frames):
        img = background.copy()
        img[10:40, 4 + 3 * t:34 + 3 * t] = (40, 200, 230)
        writer.write(img)
    writer.release()


def test_demo_writes_playable_mp4_json_and_masks(tmp_path):
    src = tmp_path / 'in.mp4'
    _write_video(src, 12, 12.5)
    out = tmp_path / 'out' / 'vis.mp4'
    out_json = tmp_path / 'out' / 'results.json'
    masks = tmp_path / 'masks'
    _run(src, TOY_CFG, '--out', out, '--out-json', out_json, '--out-masks',
         masks, *OPEN)
    count, fps, frames, shape = _read_video(out)
    assert count == frames == 12
    assert fps == pytest.approx(12.5, rel=1e-3)
    assert shape == (72, 96, 3)
    assert sorted(os.listdir(tmp_path / 'out')) == ['results.json', 'vis.mp4']
    results = json.loads(out_json.read_text())
    assert results and all(r['video_id'] == 1 for r in results)
    assert all(len(r['segmentations']) == 12 for r in results)
    pngs = sorted(masks.glob('*.png'))
    assert len(pngs) == 12
    first = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint16 and first.shape == (72, 96)
    assert first.max() > 0  # track id + 1 where an instance is


def test_demo_frame_folder_default_fps(tmp_path):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(
            str(folder / f'{i}.jpg'), np.full((48, 64, 3), 40 * i, np.uint8))
    out = tmp_path / 'vis.mp4'
    _run(folder, TOY_CFG, '--out', out, '--max-frames', 4)
    count, fps, frames, shape = _read_video(out)
    assert count == frames == 4 and shape == (48, 64, 3)
    assert fps == pytest.approx(demo.DEFAULT_FPS)


def test_demo_never_overwrites_without_force(tmp_path):
    src = tmp_path / 'in.mp4'
    _write_video(src, 3, 5.0)
    out = tmp_path / 'vis.mp4'
    out.write_bytes(b'precious')
    with pytest.raises(FileExistsError, match='--force'):
        _run(src, TOY_CFG, '--out', out)
    assert out.read_bytes() == b'precious'
    masks = tmp_path / 'masks'
    masks.mkdir()
    (masks / 'mine.png').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='not empty'):
        _run(src, TOY_CFG, '--out-masks', masks)
    _run(src, TOY_CFG, '--out', out, '--force')
    assert _read_video(out)[2] == 3


def test_demo_bad_inputs(tmp_path):
    garbage = tmp_path / 'x.mp4'
    garbage.write_bytes(np.random.RandomState(1).bytes(2048))
    out = tmp_path / 'vis.mp4'
    with pytest.raises(ValueError, match=f'cannot open video {garbage}'):
        _run(garbage, TOY_CFG, '--out', out)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match=f'{empty} has no images'):
        _run(empty, TOY_CFG, '--out', out)
    sizes = tmp_path / 'sizes'
    sizes.mkdir()
    cv2.imwrite(str(sizes / '0.png'), np.zeros((32, 48, 3), np.uint8))
    cv2.imwrite(str(sizes / '1.png'), np.zeros((32, 50, 3), np.uint8))
    with pytest.raises(ValueError, match='frame 1 is 50x32'):
        _run(sizes, TOY_CFG, '--out', out)
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if 'partial' in n]
    with pytest.raises(SystemExit):  # nothing to do
        _run(sizes, TOY_CFG)


@NEEDS_OPENCV_DOC
def test_demo_on_real_footage_vtest(tmp_path):
    """Pedestrians, 768x576 at 10 fps (795 frames): a 20-frame prefix."""
    out = tmp_path / 'vtest_vis.mp4'
    out_json = tmp_path / 'vtest.json'
    _run(
        osp.join(OPENCV_DATA, 'vtest.avi'), TOY_CFG, '--out', out,
        '--out-json', out_json, '--max-frames', 20, *OPEN)
    count, fps, frames, shape = _read_video(out)
    assert count == frames == 20
    assert fps == pytest.approx(10.0)
    assert shape == (576, 768, 3)
    for entry in json.loads(out_json.read_text()):
        assert len(entry['segmentations']) == 20
        rle = next(s for s in entry['segmentations'] if s)
        assert rle['size'] == [576, 768]


@NEEDS_OPENCV_DOC
def test_demo_on_damaged_real_footage(tmp_path):
    """``tree.avi``'s header declares 444 frames but only 68 decode: the
    demo writes those and warns that the file looks truncated.
    ``Megamind_bugy.avi`` (a recompressed Megamind.avi, declared 30 fps
    instead of 23.976) decodes with this OpenCV/FFmpeg: its frames and
    declared rate are used as they are."""
    out = tmp_path / 'tree_vis.mp4'
    with pytest.warns(
            UserWarning, match='tree.avi: reading stopped at frame 68 of '
            '444'):
        demo.main([
            osp.join(OPENCV_DATA, 'tree.avi'), TOY_CFG, '--out',
            str(out), '--device', 'cpu'
        ])
    count, fps, frames, shape = _read_video(out)
    assert count == frames == 68 and shape == (240, 320, 3)
    assert fps == pytest.approx(15.0, rel=1e-3)

    out = tmp_path / 'megamind_vis.mp4'
    _run(
        osp.join(OPENCV_DATA, 'Megamind_bugy.avi'), TOY_CFG, '--out', out,
        '--max-frames', 8)
    count, fps, frames, shape = _read_video(out)
    assert count == frames == 8 and shape == (528, 720, 3)
    assert fps == pytest.approx(30.0)
