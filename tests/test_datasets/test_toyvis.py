# Copyright (c) mmookd contributors. All rights reserved.
"""Tests of the ToyVIS generator: native YouTube-VIS format, determinism,
and the statistical properties the project relies on (long tail,
look-alikes, occlusion, entering/leaving, long-video motion)."""
import hashlib
import json
import os
import os.path as osp
from collections import Counter
from typing import Any, Dict, List

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmookd.datasets.toyvis import (
    TOYVIS_CLASSES,
    TOYVIS_META_FILE,
    TOYVIS_SPLITS,
    ToyVISOptions,
    generate_toyvis,
    iter_toyvis_videos,
    mask_to_rle,
    toyvis_status,
)
from mmookd.utils import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(
    num_train=4,
    num_val=3,
    num_long_val=2,
    frames=(6, 9),
    long_frames=(30, 32))


def _load(path: str) -> Dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def _decode(rle: Dict[str, Any]) -> np.ndarray:
    h, w = rle['size']
    return mask_utils.decode(mask_utils.frPyObjects(rle, h, w)).astype(bool)


def _jpeg_digest(root: str) -> str:
    digest = hashlib.sha256()
    for split in TOYVIS_SPLITS:
        img_root = osp.join(root, split, 'JPEGImages')
        for dirpath, dirnames, filenames in sorted(os.walk(img_root)):
            dirnames.sort()
            for name in sorted(filenames):
                path = osp.join(dirpath, name)
                digest.update(osp.relpath(path, root).encode())
                with open(path, 'rb') as f:
                    digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope='module')
def default_ds(tmp_path_factory) -> Dict[str, Any]:
    """The default-size dataset, generated once for the module."""
    root = str(tmp_path_factory.mktemp('toyvis_default'))
    paths = generate_toyvis(root)
    return dict(
        root=root, paths=paths, data={
            s: _load(p)
            for s, p in paths.items()
        })


@pytest.fixture(scope='module')
def big_train() -> Dict[str, Any]:
    """Statistics over a larger train split (annotations only: fast)."""
    classes: Counter = Counter()
    stats = Counter()
    for video in iter_toyvis_videos(
            split='train', num_train=150, with_images=False):
        stats['videos'] += 1
        cats = Counter(video.category_ids)
        stats['same_class_videos'] += max(cats.values()) >= 2
        stats['lookalike_videos'] += bool(video.lookalike_pairs)
        for cat, masks, full in zip(video.category_ids, video.masks,
                                    video.full_areas):
            classes[cat] += 1
            for mask, full_area in zip(masks, full):
                area = 0 if mask is None else int(mask.sum())
                stats['occluded'] += 0 < area < full_area
                stats['fully_occluded'] += area == 0 and full_area > 0
    return dict(classes=classes, stats=stats)


def _check_long_tail(classes: Counter) -> None:
    total = sum(classes.values())
    freqs = sorted((c / total for c in classes.values()), reverse=True)
    assert set(classes) == set(range(1, len(TOYVIS_CLASSES) + 1))
    assert 0.30 <= freqs[0] <= 0.40, freqs
    assert sum(f < 0.03 for f in freqs) >= 2, freqs


def test_options_validation():
    opts = ToyVISOptions()
    assert (opts.num_train, opts.num_val, opts.num_long_val) == (24, 8, 6)
    assert len(TOYVIS_CLASSES) >= 6
    # lists from json / argparse normalise to the same options
    assert ToyVISOptions(**opts.to_dict()) == opts
    with pytest.raises(ValueError):
        ToyVISOptions(frames=(10, 5))
    with pytest.raises(ValueError):
        ToyVISOptions(seed=-1)


def test_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    paths_a = generate_toyvis(a, **SMALL)
    paths_b = generate_toyvis(b, **SMALL)
    for split in TOYVIS_SPLITS:
        with open(paths_a[split], 'rb') as fa, open(paths_b[split],
                                                    'rb') as fb:
            assert fa.read() == fb.read()
    assert _jpeg_digest(a) == _jpeg_digest(b)

    paths_c = generate_toyvis(c, seed=1, **SMALL)
    with open(paths_a['train'], 'rb') as fa, open(paths_c['train'],
                                                  'rb') as fc:
        assert fa.read() != fc.read()
    assert _jpeg_digest(a) != _jpeg_digest(c)


def test_native_format(default_ds):
    root, data = default_ds['root'], default_ds['data']
    video_ids, ann_ids = set(), set()
    first_vid = {'train': 1, 'val': 1001, 'long_val': 2001}
    for split in TOYVIS_SPLITS:
        d = data[split]
        assert set(d) >= {
            'info', 'licenses', 'categories', 'videos', 'annotations'
        }
        assert d['licenses'] == []
        assert [c['id'] for c in d['categories']
                ] == list(range(1,
                                len(TOYVIS_CLASSES) + 1))
        assert tuple(c['name'] for c in d['categories']) == TOYVIS_CLASSES
        assert all('supercategory' in c for c in d['categories'])
        num = ToyVISOptions().num_videos(split)
        assert len(d['videos']) == num
        assert min(v['id'] for v in d['videos']) == first_vid[split]
        videos = {}
        for v in d['videos']:
            assert set(v) >= {'id', 'width', 'height', 'length', 'file_names'}
            assert len(v['file_names']) == v['length']
            name = v['file_names'][0].split('/')[0]
            assert v['file_names'][0] == f'{name}/00000.jpg'
            for k in (0, v['length'] - 1):
                img = cv2.imread(
                    osp.join(root, split, 'JPEGImages', v['file_names'][k]))
                assert img.shape == (v['height'], v['width'], 3)
            assert v['id'] not in video_ids
            video_ids.add(v['id'])
            videos[v['id']] = v
        for ann in d['annotations']:
            assert ann['id'] not in ann_ids
            ann_ids.add(ann['id'])
            v = videos[ann['video_id']]
            assert ann['iscrowd'] == 0
            assert 1 <= ann['category_id'] <= len(TOYVIS_CLASSES)
            assert (ann['width'], ann['height'],
                    ann['length']) == (v['width'], v['height'], v['length'])
            segs, boxes, areas = (ann['segmentations'], ann['bboxes'],
                                  ann['areas'])
            assert len(segs) == len(boxes) == len(areas) == v['length']
            assert any(s is not None for s in segs)
            for seg, box, area in zip(segs, boxes, areas):
                assert (seg is None) == (box is None) == (area is None)
                if seg is None:
                    continue
                assert seg['size'] == [v['height'], v['width']]
                assert isinstance(seg['counts'], list)
                mask = _decode(seg)
                assert mask.shape == (v['height'], v['width'])
                assert isinstance(area, float) and area == mask.sum() > 0
                ys, xs = np.nonzero(mask)
                assert box == [
                    xs.min(),
                    ys.min(),
                    xs.max() - xs.min() + 1,
                    ys.max() - ys.min() + 1
                ]
                assert box == mask_utils.toBbox(
                    mask_utils.frPyObjects(seg, *seg['size'])).tolist()


def test_rle_is_column_major():
    mask = np.zeros((5, 7), dtype=bool)
    mask[0, 0] = mask[1:4, 2:6] = mask[4, 6] = True
    rle = mask_to_rle(mask)
    assert rle['counts'][0] == 0  # starts with a (zero-length) 0 run
    assert np.array_equal(_decode(rle), mask)
    # the generator's masks survive the json round trip exactly
    video = next(iter_toyvis_videos(split='val', with_images=False, **SMALL))
    video_json, anns = video.to_json()
    for ann, masks in zip(anns, video.masks):
        for seg, mask in zip(ann['segmentations'], masks):
            assert (seg is None) == (mask is None)
            if seg is not None:
                assert np.array_equal(_decode(seg), mask)


def test_class_long_tail(default_ds, big_train):
    _check_long_tail(big_train['classes'])
    _check_long_tail(
        Counter(a['category_id']
                for a in default_ds['data']['train']['annotations']))


def test_instances_and_lookalikes(default_ds, big_train):
    for split in TOYVIS_SPLITS:
        per_video = Counter(a['video_id']
                            for a in default_ds['data'][split]['annotations'])
        assert all(2 <= n <= 5 for n in per_video.values())
        assert len(set(per_video.values())) >= 2
    stats = big_train['stats']
    assert stats['lookalike_videos'] >= 0.2 * stats['videos']
    assert stats['same_class_videos'] >= stats['lookalike_videos']
    # look-alikes: same class and nearly the same colour, unlike random
    # pairs of instances
    pair_dh, other_dh = [], []
    for video in iter_toyvis_videos(split='train', with_images=False):
        for i, j in video.lookalike_pairs:
            assert video.category_ids[i] == video.category_ids[j]
        pairs = {tuple(sorted(p)) for p in video.lookalike_pairs}
        hues = [inst['hue'] for inst in video.instances]
        for i in range(len(hues)):
            for j in range(i + 1, len(hues)):
                dh = abs(hues[i] - hues[j])
                dh = min(dh, 1 - dh)
                (pair_dh if (i, j) in pairs else other_dh).append(dh)
    assert len(pair_dh) >= 3
    assert max(pair_dh) <= 0.02 < np.mean(other_dh)


def _hue_gaps(class_hue_std: float):
    """Mean circular hue gap within a class and across classes."""
    same, cross = [], []
    insts = [(c, inst['hue']) for video in iter_toyvis_videos(
        dict(class_hue_std=class_hue_std), split='train', with_images=False)
             for c, inst in zip(video.category_ids, video.instances)]
    for a in range(len(insts)):
        for b in range(a + 1, len(insts)):
            dh = abs(insts[a][1] - insts[b][1])
            dh = min(dh, 1 - dh)
            (same if insts[a][0] == insts[b][0] else cross).append(dh)
    return np.mean(same), np.mean(cross)


def test_class_typical_hue():
    # classes have a characteristic colour (jittered), as real categories
    # have typical appearance; class_hue_std <= 0 removes that cue
    same, cross = _hue_gaps(0.05)
    assert same < 0.08 and cross > 2.5 * same
    same_u, cross_u = _hue_gaps(0.0)
    assert same_u > 0.15 and abs(same_u - cross_u) < 0.1


def test_occlusion(default_ds, big_train):
    # annotations carry the visible part: smaller than the unoccluded shape
    # when occluded, null when fully occluded
    stats = big_train['stats']
    assert stats['occluded'] >= 50
    assert stats['fully_occluded'] >= 1
    occluded = 0
    anns = default_ds['data']['val']['annotations']
    videos = list(iter_toyvis_videos(split='val', with_images=False))
    full_areas = {
        ann_id: full
        for v in videos
        for ann_id, full in zip(v.annotation_ids, v.full_areas)
    }
    for ann in anns:
        for area, full in zip(ann['areas'], full_areas[ann['id']]):
            assert (area or 0) <= full
            occluded += area is not None and area < full
    assert occluded >= 5


def test_entering_and_leaving(default_ds):
    entering = leaving = 0
    for split in ('train', 'val'):
        for ann in default_ds['data'][split]['annotations']:
            segs = ann['segmentations']
            entering += segs[0] is None and any(segs)
            leaving += segs[-1] is None and any(segs)
    assert entering >= 5 and leaving >= 5


def test_video_variety_and_texture(default_ds):
    root, data = default_ds['root'], default_ds['data']
    sizes = {(v['width'], v['height']) for v in data['train']['videos']}
    assert len(sizes) >= 3
    lengths = [v['length'] for v in data['train']['videos']]
    assert len(set(lengths)) >= 4 and min(lengths) >= 8
    assert max(lengths) <= 20
    long_lengths = [v['length'] for v in data['long_val']['videos']]
    assert min(long_lengths) >= 30 and max(long_lengths) <= 50
    # native frame names: every 5th (train/val) or 20th (long) step
    assert data['val']['videos'][0]['file_names'][1].endswith('00005.jpg')
    assert data['long_val']['videos'][0]['file_names'][1].endswith('00020.jpg')

    # Textured background and objects (not colour-thresholdable), frames
    # stored as mild JPEG of the rendered images.
    video = next(iter_toyvis_videos(split='train'))
    ann_video = data['train']['videos'][0]
    assert video.file_names == ann_video['file_names']
    for t in (0, len(video.steps) - 1):
        img = cv2.imread(
            osp.join(root, 'train', 'JPEGImages', video.file_names[t]))
        diff = np.abs(img.astype(float) - video.images[t].astype(float))
        assert 0 < diff.mean() < 4
        union = np.zeros(img.shape[:2], dtype=bool)
        for masks in video.masks:
            if masks[t] is not None:
                union |= masks[t]
        background = img[~cv2.dilate(union.astype(np.uint8), np.ones(
            (5, 5))).astype(bool)]
        assert background.std(axis=0).mean() > 8
    inst_std = [
        video.images[t][m].std(axis=0).mean() for masks in video.masks
        for t, m in enumerate(masks) if m is not None and m.sum() > 100
    ]
    assert np.mean(inst_std) > 5


def _mean_step(data: Dict[str, Any]) -> float:
    """Mean centroid displacement between consecutive visible frames."""
    steps: List[float] = []
    for ann in data['annotations']:
        prev = None
        for seg in ann['segmentations']:
            if seg is None:
                prev = None
                continue
            ys, xs = np.nonzero(_decode(seg))
            cur = np.array([xs.mean(), ys.mean()])
            if prev is not None:
                steps.append(float(np.linalg.norm(cur - prev)))
            prev = cur
    return float(np.mean(steps))


def test_long_val_moves_more(default_ds):
    data = default_ds['data']
    val_step, long_step = _mean_step(data['val']), _mean_step(data['long_val'])
    assert long_step > 2.5 * val_step, (val_step, long_step)

    def scale_change(split: str) -> float:
        return float(
            np.mean([
                max(s) / min(s)
                for v in iter_toyvis_videos(split=split, with_images=False)
                for s in v.scales
            ]))

    assert scale_change('long_val') > scale_change('val') + 0.2
    assert scale_change('val') > 1.0


def _load_cli():
    path = osp.join(REPO, 'tools', 'dataset_converters', 'generate_toyvis.py')
    return load_tool(path, '_generate_toyvis_cli')


def test_cli_safe_and_idempotent(tmp_path, capsys):
    cli = _load_cli()
    out = str(tmp_path / 'toyvis')
    args = [
        '--out', out, '--num-train', '2', '--num-val', '1', '--num-long-val',
        '1', '--frames', '4', '6', '--long-frames', '8', '10', '--sizes',
        '128x96', '150x100'
    ]
    assert cli.main(args) == 0
    meta_path = osp.join(out, TOYVIS_META_FILE)
    meta = _load(meta_path)
    assert meta['options']['sizes'] == [[128, 96], [150, 100]]
    ann_path = osp.join(out, 'annotations', 'toyvis_train.json')
    with open(ann_path, 'rb') as f:
        ann_bytes = f.read()
    digest = _jpeg_digest(out)
    mtime = os.stat(ann_path).st_mtime_ns
    user_file = osp.join(out, 'my_notes.txt')
    with open(user_file, 'w') as f:
        f.write('mine')
    capsys.readouterr()

    # same options: nothing to do
    assert cli.main(args) == 0
    assert 'already exists' in capsys.readouterr().out
    assert os.stat(ann_path).st_mtime_ns == mtime

    # different options: refused, nothing touched
    with pytest.raises(FileExistsError, match='--force'):
        cli.main(args + ['--seed', '3'])
    with open(ann_path, 'rb') as f:
        assert f.read() == ann_bytes
    assert _jpeg_digest(out) == digest
    assert toyvis_status(out, meta['options']) == 'identical'
    with pytest.raises(FileExistsError):
        generate_toyvis(out, seed=3)

    # --force replaces only what the generator owns
    assert cli.main(args + ['--seed', '3', '--force']) == 0
    assert _load(meta_path)['options']['seed'] == 3
    with open(ann_path, 'rb') as f:
        assert f.read() != ann_bytes
    assert osp.isfile(user_file)


def test_cli_refuses_foreign_files(tmp_path):
    cli = _load_cli()
    out = tmp_path / 'data'
    (out / 'annotations').mkdir(parents=True)
    foreign = out / 'annotations' / 'toyvis_val.json'
    foreign.write_text('user data')
    args = ['--out', str(out), '--num-train', '1', '--num-val', '1']
    with pytest.raises(FileExistsError, match='Nothing was changed'):
        cli.main(args)
    assert foreign.read_text() == 'user data'
    # an interrupted run (no meta file) is not mistaken for a dataset
    assert toyvis_status(str(out)) == 'conflict'
    assert toyvis_status(str(tmp_path / 'nothing')) == 'absent'
