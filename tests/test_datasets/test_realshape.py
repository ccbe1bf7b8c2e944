# Copyright (c) mmookd contributors. All rights reserved.
"""The real-shape datasets: official layouts, real sizes, valid masks.

The config tests trust these datasets to look like the downloads, so they
are checked here against the releases' layouts and by the project's own
dataset checker (every frame decodes at its video's size, every mask
decodes to its area and box)."""
import json
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as maskUtils
import pytest

from mmookd.datasets.checker import check_vis_dataset
from mmookd.datasets.realshape import (
    COCO_CAT_IDS,
    generate_realshape,
    uncompressed_rle,
    window_rle,
)

RELEASES = {
    # kind: (train annotation file, train image folder, version, classes)
    'ytvis2019': ('train.json', 'train/JPEGImages', '2019', 40),
    'ytvis2021': ('train/instances.json', 'train/JPEGImages', '2021', 40),
    'ovis': ('annotations_train.json', 'train', 'ovis', 25),
}


def test_window_rle_equals_the_full_mask_encoding():
    rng = np.random.default_rng(0)
    h, w = 37, 53
    for _ in range(20):
        y0, x0 = int(rng.integers(0, h - 5)), int(rng.integers(0, w - 5))
        win = (
            rng.random(
                (int(rng.integers(1, h - y0)), int(rng.integers(1, w - x0))))
            > 0.5)
        full = np.zeros((h, w), np.uint8)
        full[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] = win
        rle = window_rle(h, w, y0, x0, win)
        assert rle == uncompressed_rle(full)
        assert sum(rle['counts']) == h * w
        decoded = maskUtils.decode(maskUtils.frPyObjects(rle, h, w))
        np.testing.assert_array_equal(decoded, full)
    # a mask touching the first pixel starts with a zero-length run
    full = np.zeros((4, 5), np.uint8)
    full[0, 0] = 1
    assert uncompressed_rle(full)['counts'][:2] == [0, 1]


@pytest.mark.parametrize('kind', sorted(RELEASES))
def test_release_layout_and_checker(kind, tmp_path):
    ann, img_dir, version, num_classes = RELEASES[kind]
    root = str(tmp_path / kind)
    files = generate_realshape(root, kind, seed=0)
    assert files['train'] == osp.join(root, ann)
    with open(files['train']) as f:
        data = json.load(f)
    assert len(data['categories']) == num_classes
    used = {a['category_id'] for a in data['annotations']}
    assert 1 < len(used) < num_classes  # only some classes occur
    assert any(a['iscrowd'] for a in data['annotations'])
    assert any(None in a['segmentations'] for a in data['annotations'])
    sizes = {(v['width'], v['height']) for v in data['videos']}
    assert {(1280, 720), (720, 1280), (1281, 719)} <= sizes
    lengths = [v['length'] for v in data['videos']]
    if kind == 'ovis':
        assert max(lengths) >= 100
    else:
        assert min(lengths) >= 5 and max(lengths) <= 36
    # a frame has its video's size on disk
    video = data['videos'][0]
    img = cv2.imread(osp.join(root, img_dir, video['file_names'][0]))
    assert img.shape[:2] == (video['height'], video['width'])
    # the project's checker finds nothing wrong
    report = check_vis_dataset(
        files['train'], osp.join(root, img_dir), version=version)
    assert report.ok, report.format() if hasattr(report, 'format') else report
    # the splits without ground truth
    with open(files['valid']) as f:
        valid = json.load(f)
    assert valid['annotations'] is None and valid['videos']
    with pytest.raises(FileExistsError):
        generate_realshape(root, kind)


def test_ytvis2022_valid_holds_the_long_videos(tmp_path):
    files = generate_realshape(str(tmp_path / 'y22'), 'ytvis2022')
    with open(files['valid']) as f:
        lengths = [v['length'] for v in json.load(f)['videos']]
    assert min(lengths) <= 36 < max(lengths)
    assert files['valid'].endswith(osp.join('valid', 'instances.json'))


def test_coco_layout(tmp_path):
    files = generate_realshape(str(tmp_path / 'coco'), 'coco')
    assert files['train2017'].endswith(
        osp.join('annotations', 'instances_train2017.json'))
    with open(files['train2017']) as f:
        data = json.load(f)
    assert [c['id'] for c in data['categories']] == list(COCO_CAT_IDS)
    assert len(data['categories']) == 80
    for ann in data['annotations']:
        image = next(i for i in data['images'] if i['id'] == ann['image_id'])
        h, w = image['height'], image['width']
        rles = (
            maskUtils.frPyObjects(ann['segmentation'], h, w) if isinstance(
                ann['segmentation'], list) else
            [maskUtils.frPyObjects(ann['segmentation'], h, w)])
        mask = maskUtils.decode(maskUtils.merge(rles))
        x, y, bw, bh = ann['bbox']
        ys, xs = np.nonzero(mask)
        # polygons are traced around the pixel centres: within 1 px
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert abs(xs.max() + 1 - (x + bw)) <= 1.5
