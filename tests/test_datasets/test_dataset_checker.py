# Copyright (c) mmookd contributors. All rights reserved.
"""Wrong-but-loadable YouTube-VIS data: what the dataset does (refuse at
load, refuse at frame-loading time, or warn and ignore) and what the
checker (``check_vis_dataset`` / ``tools/misc/check_dataset.py``) reports,
for each mutation of the tiny valid dataset of ``conftest.py``."""
import hashlib
import json
import os
import os.path as osp
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
import pycocotools.mask as maskUtils
import pytest
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope

from mmookd.datasets.checker import (
    PROBLEM_KINDS,
    check_vis_dataset,
    rle_counts,
)
from mmookd.datasets.transforms.loading import jpeg_truncated
from mmookd.datasets.ytvis import VISDataError
from mmookd.utils import load_tool
from mmookd.utils.cli import run_cli

init_default_scope('mmdet')
H, W = 32, 48  # the frame size of conftest's tiny dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'misc', 'check_dataset.py')

TEST_PIPELINE = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadVISFrame'),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]


def build(info: dict, **kwargs):
    cfg = dict(
        type='YTVISDataset',
        ann_file=info['ann_file'],
        data_prefix=dict(img_path=info['img_prefix']),
        serialize_data=False,
        test_mode=True,
        pipeline=TEST_PIPELINE)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def frame(info: dict, name: str) -> str:
    return osp.join(info['img_prefix'], name)


# ---- mutations: of the JSON (before it is written) or of the frames ----
def _set(path, value) -> Callable:

    def mutate(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value

    return mutate


def _corrupt_jpeg(info):
    with open(frame(info, 'vid_a/00003.jpg'), 'wb') as f:
        f.write(b'\xff\xd8 this is not image data ' * 8)


def _truncated_jpeg(info):
    path = frame(info, 'vid_b/00001.jpg')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])


def _wrong_frame_size(info):
    cv2.imwrite(
        frame(info, 'vid_b/00002.jpg'), np.zeros((40, 40, 3), np.uint8))


def _missing_frame(info):
    os.remove(frame(info, 'vid_a/00004.jpg'))


def _add_all_null(d):
    d['annotations'].append(
        dict(
            id=13,
            video_id=1,
            category_id=2,
            iscrowd=0,
            segmentations=[None] * 5,
            bboxes=[None] * 5,
            areas=[None] * 5))


def _wrong_sum_string(d):
    # a valid string of a 16x16 mask: decodes, but not to 32x48 pixels
    rle = maskUtils.encode(np.asfortranarray(np.ones((16, 16), np.uint8)))
    seg = d['annotations'][1]['segmentations'][2]
    seg['counts'] = rle['counts'].decode('ascii')


# name -> (JSON mutation, file mutation, what the dataset does, checker
# kind, fragments of the dataset's / checker's message besides the file)
# ``load``: VISDataError when built; ``frame``: VISDataError when the frame
# is loaded; ``warn``: loads, warns and ignores; ``accept``: loads as is
# (only the checker decodes masks).
CASES: Dict[str, Tuple] = {
    'corrupt_jpeg': (None, _corrupt_jpeg, 'frame', 'bad_frame',
                     ['vid_a/00003.jpg', 'video 1', 'frame 3']),
    'truncated_jpeg': (None, _truncated_jpeg, 'frame', 'bad_frame',
                       ['vid_b/00001.jpg', 'video 2', 'frame 1']),
    'wrong_frame_size': (None, _wrong_frame_size, 'frame', 'frame_size',
                         ['vid_b/00002.jpg', 'video 2', 'frame 2', '40x40']),
    'missing_frame': (None, _missing_frame, 'load', 'missing_frame',
                      ['vid_a/00004.jpg', 'video 1', 'frame 4']),
    'path_outside':
    (_set(['videos', 0, 'file_names', 2], '../../../../etc/hostname'), None,
     'load', 'bad_path', ["video 1 ('vid_a')", '../../../../etc/hostname']),
    'absolute_path': (_set(['videos', 1, 'file_names', 0],
                           '/etc/hostname'), None, 'load', 'bad_path',
                      ['video 2', '/etc/hostname', 'absolute']),
    'garbage_rle_string':
    (_set(['annotations', 1, 'segmentations', 1, 'counts'], 'garbage!!~'),
     None, 'load', 'bad_mask', ['video 1', 'annotation 12', 'frame 1']),
    'bad_rle_list': (_set(['annotations', 0, 'segmentations', 3, 'counts'],
                          [100, -20, 1456]), None, 'load', 'bad_mask',
                     ['video 1', 'annotation 11', 'frame 3', 'negative']),
    'rle_list_wrong_sum':
    (_set(['annotations', 0, 'segmentations', 1, 'counts'], [100, 170, 1000]),
     None, 'load', 'bad_mask', ['annotation 11', 'frame 1', 'sum to 1270']),
    'rle_string_wrong_sum': (_wrong_sum_string, None, 'accept', 'bad_mask',
                             ['annotation 12', 'frame 2', 'summing to']),
    'negative_width_box': (_set(['annotations', 0, 'bboxes', 1],
                                [3, 2, -17, 10]), None, 'load', 'bad_bbox',
                           ['video 1', 'annotation 11', 'frame 1',
                            'negative']),
    'all_null_annotation': (_add_all_null, None, 'warn', 'all_null_annotation',
                            ['video 1', 'annotation 13']),
    'area_mismatch': (_set(['annotations', 0, 'areas', 0],
                           171), None, 'accept', 'area_mismatch',
                      ['annotation 11', 'frame 0', '171', '170 pixels']),
    'bbox_mismatch': (_set(['annotations', 2, 'bboxes', 2],
                           [5, 5, 30, 15]), None, 'accept', 'bbox_mismatch',
                      ["video 2 ('vid_b')", 'annotation 21', 'frame 2']),
}


def make_case(make_ytvis, case: str) -> dict:
    mutate, file_mutation, *_ = CASES[case]
    info = make_ytvis(f'{case}.json', mutate=mutate)
    if file_mutation is not None:
        file_mutation(info)
    return info


@pytest.mark.parametrize('case', sorted(CASES))
def test_mutation(make_ytvis, monkeypatch, case):
    _, _, outcome, kind, fragments = CASES[case]
    info = make_case(make_ytvis, case)
    names = [f'{case}.json'] if kind not in ('bad_frame', 'frame_size',
                                             'missing_frame') else []

    # what the dataset does
    logged = []
    monkeypatch.setattr('mmookd.datasets.ytvis.print_log',
                        lambda msg, *a, **k: logged.append(msg))

    def text(error) -> str:  # without the tmp folder (named after the test)
        return str(error).replace(info['root'], '<tmp>')

    if outcome == 'load':
        with pytest.raises(VISDataError) as e:
            build(info)
        msg = text(e.value)
        for fragment in names + fragments:
            assert fragment in msg, (fragment, msg)
    else:
        ds = build(info)
        assert ds.num_all_imgs == 8
        if outcome == 'frame':
            idx = 0 if 'vid_a' in fragments[0] else 1
            with pytest.raises(VISDataError) as e:
                ds[idx]
            msg = text(e.value)
            assert '\n' not in msg
            assert msg.startswith(f'<tmp>/JPEGImages/{fragments[0]}: ')
            for fragment in fragments:
                assert fragment in msg, (fragment, msg)
        else:
            for idx in range(len(ds)):
                ds[idx]
        if outcome == 'warn':
            assert len(logged) == 1
            assert all(f in text(logged[0]) for f in names + fragments)
            ids = {
                inst['instance_id']
                for img in ds.get_data_info(0)['images']
                for inst in img['instances']
            }
            assert ids == {11, 12}
        else:
            assert logged == []

    # what the checker reports: exactly this problem, naming the file
    report = check_vis_dataset(info['ann_file'], info['img_prefix'])
    assert report.counts() == {kind: 1}, report.format()
    assert report.ok == (PROBLEM_KINDS[kind][0] == 'warning')
    msg = text(report.problems[0].message)
    for fragment in names + fragments:
        assert fragment in msg, (fragment, msg)


def test_truncated_jpeg_ends_without_eoi(make_ytvis):
    info = make_ytvis()
    with open(frame(info, 'vid_a/00000.jpg'), 'rb') as f:
        data = f.read()
    assert not jpeg_truncated(data)
    assert not jpeg_truncated(data + b'\x00\x00\n')
    assert jpeg_truncated(data[:-10])
    assert not jpeg_truncated(b'\x89PNG not a jpeg')


def test_lenient_decoder_truncated_jpeg(make_ytvis, monkeypatch):
    """OpenCV 4 (and other libjpeg users) decode a cut JPEG with a warning
    only; the missing end-of-image marker still gives it away."""
    info = make_case(make_ytvis, 'truncated_jpeg')
    monkeypatch.setattr('mmcv.imfrombytes', lambda *a, **k: np.zeros(
        (H, W, 3), np.uint8))
    with pytest.raises(VISDataError) as e:
        build(info)[1]
    assert str(e.value) == (
        f"{frame(info, 'vid_b/00001.jpg')}: cannot decode frame (video 2, "
        'frame 1): truncated JPEG (no end-of-image marker)')
    report = check_vis_dataset(info['ann_file'], info['img_prefix'])
    assert report.counts() == {'bad_frame': 1}
    assert 'truncated JPEG' in report.problems[0].message


def test_rle_counts_matches_pycocotools():
    rng = np.random.RandomState(0)
    for h, w in ((1, 1), (7, 5), (32, 48), (120, 90)):
        for density in (0.0, 0.1, 0.5, 1.0):
            mask = np.asfortranarray((rng.rand(h, w)
                                      < density).astype(np.uint8))
            rle = maskUtils.encode(mask)
            counts = rle_counts(rle['counts'].decode('ascii'))
            assert sum(counts) == h * w and min(counts) >= 0
            assert sum(counts[1::2]) == int(mask.sum())
            again = maskUtils.frPyObjects(
                dict(size=[h, w], counts=counts), h, w)
            assert again['counts'] == rle['counts']
    for bad in ('}', 'abc\x00', 'a'):  # outside alphabet / unfinished
        with pytest.raises(ValueError):
            rle_counts(bad)


def fingerprints(root: str) -> dict:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[path] = (digest, os.stat(path).st_mtime_ns)
    return out


def test_cli(make_ytvis, tmp_path_factory, capsys):
    tool = load_tool(TOOL)
    info = make_ytvis()
    args = [info['ann_file'], info['img_prefix']]
    assert tool.main(args + ['--version', '2019']) == 0
    out = capsys.readouterr().out
    assert '2 videos, 8 frames (8 decoded), 3 annotations, 11 masks' in out
    assert 'OK: no errors (0 warning(s))' in out

    # a wrong class list for the version is an error
    assert tool.main(args + ['--version', 'ovis']) == 1
    assert 'category_names' in capsys.readouterr().out

    # warnings pass unless --strict
    warn = make_case(make_ytvis, 'all_null_annotation')
    assert tool.main([warn['ann_file'], warn['img_prefix']]) == 0
    assert 'OK: no errors (1 warning(s))' in capsys.readouterr().out
    assert tool.main([warn['ann_file'], warn['img_prefix'], '--strict']) == 1
    capsys.readouterr()

    report = tmp_path_factory.mktemp('out') / 'report.json'
    bad = make_case(make_ytvis, 'area_mismatch')
    _corrupt_jpeg(bad)  # both JSON and frame problems
    before = fingerprints(info['root'])
    assert tool.main([
        bad['ann_file'], bad['img_prefix'], '--out',
        str(report), '--workers', '2'
    ]) == 1
    out = capsys.readouterr().out
    assert 'error area_mismatch: 1 x' in out and 'error bad_frame: 1 x' in out
    assert 'FAILED: 2 error(s), 0 warning(s)' in out
    saved = json.loads(report.read_text())
    assert saved['ok'] is False
    assert saved['counts'] == {'bad_frame': 1, 'area_mismatch': 1}
    assert 'vid_a/00003.jpg' in saved['problems']['bad_frame'][0]
    # the report is never overwritten
    assert run_cli(tool.main, args + ['--out', str(report)]) == 2
    assert 'exists' in capsys.readouterr().err
    report.unlink()
    # the data is read only
    assert fingerprints(info['root']) == before


@pytest.mark.parametrize('argv, fragment', [
    (['nope.json', '.'], 'annotation file not found: nope.json'),
    (['{ann}', 'no_such_dir'], 'image folder not found'),
    (['{ann}', '{img}', '--workers', '-1'], '--workers must be >= 0'),
    (['{ann}', '{img}', '--version', '2020'], 'invalid choice'),
    (['{ann}'], 'the following arguments are required'),
])
def test_cli_bad_arguments(make_ytvis, capsys, argv, fragment):
    tool = load_tool(TOOL)
    info = make_ytvis()
    argv = [
        a.format(ann=info['ann_file'], img=info['img_prefix']) for a in argv
    ]
    with pytest.raises(SystemExit) as e:  # argparse's errors exit itself
        raise SystemExit(run_cli(tool.main, argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    assert fragment in err


def test_cli_corrupt_json(tmp_path, capsys):
    """Not a dataset with problems but an unreadable input: status 2."""
    ann = tmp_path / 'broken.json'
    ann.write_text('{"videos": [')
    assert run_cli(load_tool(TOOL).main, [str(ann), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'broken.json' in err
    assert 'corrupt JSON' in err and err.count('\n') == 1


def test_shipped_configs_load_frames_with_load_vis_frame():
    """Every VIS pipeline shipped names video and frame of a bad frame;
    only the COCO pseudo-video pre-training loads plain images."""
    plain = []
    for folder, _, files in os.walk(osp.join(ROOT, 'configs')):
        for name in files:
            if not name.endswith('.py') or 'coco-pseudo' in name:
                continue
            with open(osp.join(folder, name)) as f:
                if "'LoadImageFromFile'" in f.read():
                    plain.append(name)
    assert plain == []
