# Copyright (c) mmookd contributors. All rights reserved.
"""COCO pseudo key/reference pairs for IDOL's pre-training
(docs/hyperparameters.md §6).

A tiny COCO-format JSON (shapes drawn into small JPEGs, polygon and RLE
segmentations, a crowd region and an unmapped category) is written into
``tmp_path`` and run through :class:`CocoPseudoVideoDataset`, the real
mmdet loading transforms, :class:`PseudoKeyRefPair`, ``PackTrackInputs``,
``TrackDataPreprocessor`` and the toy IDOL's ``loss``.
"""
import copy
import json
import os.path as osp
import random
from typing import Dict, List

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import DATASETS, MODELS, TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmookd  # noqa: F401  (registers the plugin)
from mmookd.datasets.coco_pseudo_video import (
    COCO_CATEGORY_MAPS,
    COCO_CLASSES,
    COCO_TO_YTVIS_2019,
    COCO_TO_YTVIS_2021,
    CocoPseudoVideoDataset,
)
from mmookd.datasets.ytvis import YTVIS_2019_CLASSES, YTVIS_2021_CLASSES

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
PRETRAIN_CFG = osp.join(
    REPO, 'configs/idol/idol_r50_8xb4-59200it_coco-pseudo-ytvis2021.py')

# The 80 COCO categories by official id.
COCO_NAMES = {
    1: 'person', 2: 'bicycle', 3: 'car', 4: 'motorcycle', 5: 'airplane',
    6: 'bus', 7: 'train', 8: 'truck', 9: 'boat', 10: 'traffic light',
    11: 'fire hydrant', 13: 'stop sign', 14: 'parking meter', 15: 'bench',
    16: 'bird', 17: 'cat', 18: 'dog', 19: 'horse', 20: 'sheep', 21: 'cow',
    22: 'elephant', 23: 'bear', 24: 'zebra', 25: 'giraffe', 27: 'backpack',
    28: 'umbrella', 31: 'handbag', 32: 'tie', 33: 'suitcase', 34: 'frisbee',
    35: 'skis', 36: 'snowboard', 37: 'sports ball', 38: 'kite',
    39: 'baseball bat', 40: 'baseball glove', 41: 'skateboard',
    42: 'surfboard', 43: 'tennis racket', 44: 'bottle', 46: 'wine glass',
    47: 'cup', 48: 'fork', 49: 'knife', 50: 'spoon', 51: 'bowl',
    52: 'banana', 53: 'apple', 54: 'sandwich', 55: 'orange', 56: 'broccoli',
    57: 'carrot', 58: 'hot dog', 59: 'pizza', 60: 'donut', 61: 'cake',
    62: 'chair', 63: 'couch', 64: 'potted plant', 65: 'bed',
    67: 'dining table', 70: 'toilet', 72: 'tv', 73: 'laptop', 74: 'mouse',
    75: 'remote', 76: 'keyboard', 77: 'cell phone', 78: 'microwave',
    79: 'oven', 80: 'toaster', 81: 'sink', 82: 'refrigerator', 84: 'book',
    85: 'clock', 86: 'vase', 87: 'scissors', 88: 'teddy bear',
    89: 'hair drier', 90: 'toothbrush'
}  # yapf: disable

# A small vocabulary for the toy IDOL (8 classes).
TOY_CLASSES = ('person', 'dog', 'motorbike', 'snowboard')
TOY_MAP = {'person': 'person', 'dog': 'dog', 2: 'motorbike', 35: 4}

# Tiny views: flip -> p=0.5 [resize short {48, 64} -> crop 32..48] ->
# resize short {40, 48, 56}, long <= 96 (IDOL's recipe, scaled down).
TINY_VIEWS = [
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomApply',
        prob=0.5,
        transforms=[
            dict(
                type='RandomChoiceResize',
                scales=[(1000, 48), (1000, 64)],
                keep_ratio=True),
            dict(
                type='RandomCrop',
                crop_type='absolute_range',
                crop_size=(32, 48),
                allow_negative_crop=True,
                recompute_bbox=True),
        ]),
    dict(
        type='RandomChoiceResize',
        scales=[(96, 40), (96, 48), (96, 56)],
        keep_ratio=True),
]
LOAD = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
]


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """One intra-op thread on the shared, oversubscribed CPU."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


# ---------------------------------------------------------------------------
# a tiny COCO-format dataset
# ---------------------------------------------------------------------------


def _poly(x0, y0, x1, y1) -> List[List[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


def _ann(ann_id, img_id, cat_id, segm, bbox, iscrowd=0) -> dict:
    return dict(
        id=ann_id,
        image_id=img_id,
        category_id=cat_id,
        segmentation=segm,
        bbox=bbox,
        area=float(bbox[2] * bbox[3]),
        iscrowd=iscrowd)


def write_coco(root, images: List[Dict], name='ann.json') -> str:
    """Draw every annotation's mask in its own colour on a noisy image and
    write the COCO JSON; ``images``: dicts with ``h``, ``w``, ``anns``
    (``(cat_id, segm, bbox[, iscrowd])`` tuples)."""
    rng = np.random.RandomState(0)
    data = dict(
        images=[],
        annotations=[],
        categories=[
            dict(id=i, name=n, supercategory='x')
            for i, n in COCO_NAMES.items()
        ])
    for img_id, spec in enumerate(images, start=1):
        h, w = spec['h'], spec['w']
        img = rng.randint(0, 60, (h, w, 3)).astype(np.uint8)
        for k, (cat_id, segm, bbox, *crowd) in enumerate(spec['anns']):
            if isinstance(segm, list):
                mask = mask_util.decode(
                    mask_util.merge(mask_util.frPyObjects(segm, h, w)))
            else:
                mask = mask_util.decode(
                    mask_util.frPyObjects(segm, h, w) if isinstance(
                        segm['counts'], list) else segm)
            colour = np.array([(50 * k + 90) % 256, 200, 255 - 40 * k])
            img[mask.astype(bool)] = colour
            data['annotations'].append(
                _ann(
                    len(data['annotations']) + 1, img_id, cat_id, segm, bbox,
                    crowd[0] if crowd else 0))
        file_name = f'{img_id:06d}.jpg'
        cv2.imwrite(osp.join(root, 'train2017', file_name), img)
        data['images'].append(
            dict(id=img_id, file_name=file_name, height=h, width=w))
    path = osp.join(root, 'annotations', name)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


@pytest.fixture
def coco_root(tmp_path) -> str:
    """3 images: mapped + unmapped + crowd instances; mapped only; only an
    unmapped category (filtered out as empty after the mapping)."""
    (tmp_path / 'train2017').mkdir()
    (tmp_path / 'annotations').mkdir()
    dog = np.zeros((72, 96), np.uint8)
    cv2.circle(dog, (66, 44), 16, 1, -1)
    crowd = np.zeros((72, 96), np.uint8)
    crowd[60:70, 2:30] = 1
    crowd_rle = dict(
        size=[72, 96], counts=[int(c) for c in _uncompressed_counts(crowd)])
    write_coco(str(tmp_path), [
        dict(h=72, w=96, anns=[
            (1, _poly(6, 6, 30, 56), [6, 6, 24, 50]),  # person
            (18, _rle(dog), [50, 28, 33, 33]),  # dog, compressed RLE
            (10, _poly(38, 4, 44, 16), [38, 4, 6, 12]),  # traffic light
            (1, crowd_rle, [2, 60, 28, 10], 1),  # crowd person
        ]),
        dict(h=64, w=80, anns=[
            (2, _poly(4, 10, 40, 50), [4, 10, 36, 40]),  # bicycle
            (35, _poly(48, 20, 76, 30), [48, 20, 28, 10]),  # skis
        ]),
        dict(h=48, w=48, anns=[
            (10, _poly(10, 10, 20, 30), [10, 10, 10, 20]),  # unmapped only
        ]),
    ])  # yapf: disable
    return str(tmp_path)


def _uncompressed_counts(mask: np.ndarray) -> List[int]:
    flat = mask.flatten(order='F')
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return counts


def build_dataset(root, pipeline=(), **kwargs) -> CocoPseudoVideoDataset:
    cfg = dict(
        type='CocoPseudoVideoDataset',
        data_root=root,
        ann_file='annotations/ann.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=list(pipeline))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def pair_pipeline(**kwargs) -> List[dict]:
    return LOAD + [
        dict(type='PseudoKeyRefPair', view_transforms=TINY_VIEWS, **kwargs)
    ]


def seeded(dataset, idx, seed):
    random.seed(seed)
    np.random.seed(seed)
    return dataset[idx]


# ---------------------------------------------------------------------------
# dataset: category mapping
# ---------------------------------------------------------------------------


def test_preset_maps_coco_to_ytvis_2021_and_drops_unmapped(coco_root):
    ds = build_dataset(coco_root)  # default: coco2ytvis2021
    assert ds.metainfo['classes'] == YTVIS_2021_CLASSES
    # the image with only a traffic light is filtered out (empty after
    # the mapping, FILTER_EMPTY_ANNOTATIONS)
    assert len(ds) == 2
    classes = ds.metainfo['classes']
    first = ds.get_data_info(0)['instances']
    names = [classes[ins['bbox_label']] for ins in first]
    assert names == ['person', 'dog', 'person']  # traffic light dropped
    assert [ins['ignore_flag'] for ins in first] == [0, 0, 1]  # crowd
    second = ds.get_data_info(1)['instances']
    assert [classes[ins['bbox_label']]
            for ins in second] == ['motorbike', 'snowboard']
    # the 2019 preset: its own classes and ids
    ds19 = build_dataset(coco_root, category_map='coco2ytvis2019')
    assert ds19.metainfo['classes'] == YTVIS_2019_CLASSES
    names19 = [
        YTVIS_2019_CLASSES[ins['bbox_label']]
        for ins in ds19.get_data_info(1)['instances']
    ]
    assert names19 == ['motorbike', 'snowboard']


def test_coco_preset_keeps_all_80_classes_and_annotations(coco_root):
    """IDOL's official pre-training vocabulary: COCO itself."""
    ds = build_dataset(coco_root, category_map='coco')
    assert ds.metainfo['classes'] == COCO_CLASSES
    assert len(COCO_CLASSES) == 80
    assert len(ds) == 3  # the traffic-light image has an instance now
    first = ds.get_data_info(0)['instances']
    assert [COCO_CLASSES[ins['bbox_label']]
            for ins in first] == ['person', 'dog', 'traffic light', 'person']
    assert [ins['ignore_flag'] for ins in first] == [0, 0, 0, 1]  # crowd
    # labels in category-id order: detectron2's contiguous ids, so the
    # official 80-class heads keep their meaning
    assert [ds.cat2label[i] for i in sorted(COCO_NAMES)] == list(range(80))


def test_without_filter_keeps_images_without_mapped_instances(coco_root):
    ds = build_dataset(coco_root, filter_cfg=None)
    assert len(ds) == 3
    assert ds.get_data_info(2)['instances'] == []


def test_custom_map_by_name_and_id(coco_root):
    ds = build_dataset(
        coco_root, category_map=TOY_MAP, metainfo=dict(classes=TOY_CLASSES))
    assert ds.metainfo['classes'] == TOY_CLASSES
    labels = [[ins['bbox_label'] for ins in ds.get_data_info(i)['instances']]
              for i in range(len(ds))]
    assert labels == [[0, 1, 0], [2, 3]]
    # only the mapped COCO ids are categories of the dataset
    assert sorted(ds.cat2label) == [1, 2, 18, 35]


def test_bad_category_maps(coco_root):
    with pytest.raises(ValueError, match='metainfo'):
        build_dataset(coco_root, category_map={'person': 'person'})
    with pytest.raises(ValueError, match='not in the target classes'):
        build_dataset(
            coco_root,
            category_map={'person': 'human'},
            metainfo=dict(classes=TOY_CLASSES))
    with pytest.raises(ValueError, match='classes differ'):
        build_dataset(
            coco_root,
            category_map='coco2ytvis2021',
            metainfo=dict(classes=YTVIS_2019_CLASSES))
    with pytest.raises(KeyError, match='coco2ytvis2020'):
        build_dataset(coco_root, category_map='coco2ytvis2020')
    with pytest.raises(ValueError, match='No category'):
        build_dataset(
            coco_root,
            category_map={'unicorn': 'dog'},
            metainfo=dict(classes=TOY_CLASSES))
    # mapped, but no image has such an instance
    with pytest.raises(ValueError, match='left after filtering'):
        build_dataset(
            coco_root,
            category_map={'giraffe': 'dog'},
            metainfo=dict(classes=TOY_CLASSES))


@pytest.mark.parametrize('name', ['coco2ytvis2019', 'coco2ytvis2021'])
def test_official_tables_are_semantically_right(name):
    """Every mapped pair is the same object (or a known synonym)."""
    table, classes = COCO_CATEGORY_MAPS[name]
    synonyms = {('bicycle', 'motorbike'), ('motorcycle', 'motorbike'),
                ('car', 'sedan'), ('skis', 'snowboard'),
                ('frisbee', 'flying_disc'), ('tennis racket', 'tennis_racket')}
    assert len(classes) == 40
    for coco_id, target_id in table.items():
        src, dst = COCO_NAMES[coco_id], classes[target_id - 1]
        assert src == dst or (src, dst) in synonyms, (coco_id, src, dst)
    assert len(COCO_TO_YTVIS_2019) == 21 and len(COCO_TO_YTVIS_2021) == 23


def test_missing_or_malformed_json_names_the_file(tmp_path, coco_root):
    missing = str(tmp_path / 'nope' / 'instances_train2017.json')
    with pytest.raises(FileNotFoundError, match='instances_train2017.json'):
        build_dataset(coco_root, ann_file=missing)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json'):
        build_dataset(coco_root, ann_file=str(bad))


# ---------------------------------------------------------------------------
# transform
# ---------------------------------------------------------------------------


def test_pair_has_the_video_pipeline_format(coco_root, tiny_toyvis):
    """Same keys, list lengths and dtypes as the real ToyVIS video train
    pipeline (KeyRefFrameSample + TransformBroadcaster) feeds
    PackTrackInputs."""
    toy = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/toyvis.py'))
    video_cfg = copy.deepcopy(toy.train_dataloader.dataset)
    video_cfg.data_root = tiny_toyvis
    video_cfg.pipeline = video_cfg.pipeline[:-1]  # without PackTrackInputs
    video = DATASETS.build(video_cfg)[0]

    pair = seeded(build_dataset(coco_root, pair_pipeline()), 0, 0)
    missing = set(video) - set(pair)
    assert not missing, missing
    for key in video:
        assert isinstance(pair[key], list) and len(pair[key]) == 2, key
    assert pair['key_frame_flags'] == [True, False]
    assert pair['frame_id'] == [0, 1]
    assert pair['video_length'] == pair['ori_video_length'] == [2, 2]
    assert pair['video_id'] == pair['img_id']
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_instances_ids',
                'gt_ignore_flags'):
        assert type(pair[key][0]) is type(video[key][0]), key
        assert pair[key][0].dtype == video[key][0].dtype, key
    assert isinstance(pair['gt_masks'][0], BitmapMasks)
    assert pair['img'][0].dtype == video['img'][0].dtype == np.uint8
    packed = TRANSFORMS.build(dict(type='PackTrackInputs'))(pair)
    sample = packed['data_samples']
    assert packed['inputs'].shape[0] == 2
    assert sample.key_frames_inds == [0] and sample.ref_frames_inds == [1]
    assert {'img_path', 'ori_shape', 'img_shape',
            'frame_id'} <= set(sample[0].metainfo)
    # the crowd person is an ignored instance, not a target
    assert len(sample[0].ignored_instances) <= 1


def test_views_are_augmented_independently(coco_root):
    ds = build_dataset(coco_root, pair_pipeline())
    shapes_differ = flips_differ = 0
    for seed in range(12):
        pair = seeded(ds, 0, seed)
        shapes_differ += pair['img_shape'][0] != pair['img_shape'][1]
        flips_differ += pair['flip'][0] != pair['flip'][1]
    assert shapes_differ > 0 and flips_differ > 0
    # same_aug (PRETRAIN_SAME_CROP True): identical views
    same = build_dataset(coco_root, pair_pipeline(same_aug=True))
    for seed in range(4):
        pair = seeded(same, 0, seed)
        assert np.array_equal(pair['img'][0], pair['img'][1])
        assert np.array_equal(pair['gt_bboxes'][0], pair['gt_bboxes'][1])


def test_ids_masks_and_boxes_are_consistent(coco_root):
    ds = build_dataset(coco_root, pair_pipeline())
    for seed in range(10):
        for idx in range(len(ds)):
            pair = seeded(ds, idx, seed)
            num = len(ds.get_data_info(idx)['instances'])
            key_ids, ref_ids = pair['gt_instances_ids']
            # ids 1..N by annotation order; the reference only holds
            # instances of the key
            assert set(key_ids) <= set(range(1, num + 1))
            assert list(key_ids) == sorted(key_ids)
            assert set(ref_ids) <= set(key_ids)
            labels = ds.get_data_info(idx)['instances']
            for v in range(2):
                img_h, img_w = pair['img_shape'][v]
                pad_h, pad_w = pair['img'][v].shape[:2]
                masks = pair['gt_masks'][v]
                assert (masks.height, masks.width) == (pad_h, pad_w)
                assert pair['img'][0].shape == pair['img'][1].shape
                for i, inst_id in enumerate(pair['gt_instances_ids'][v]):
                    assert pair['gt_bboxes_labels'][v][i] == \
                        labels[inst_id - 1]['bbox_label']
                    m = masks.masks[i]
                    assert m.any()  # empty instances were removed
                    assert not m[img_h:].any() and not m[:, img_w:].any()
                    ys, xs = np.nonzero(m)
                    x1, y1, x2, y2 = pair['gt_bboxes'][v][i]
                    assert x2 > x1 and y2 > y1
                    assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1
                    assert ys.min() >= y1 - 1 and ys.max() <= y2 + 1


class ScriptedCrop(RandomCrop):
    """mmdet's RandomCrop with the crop boxes of successive calls given."""

    def __init__(self, crops, **kwargs):
        super().__init__(crop_size=(1, 1), allow_negative_crop=True, **kwargs)
        self.crops = list(crops)  # (x, y, w, h) per call
        self.calls = 0

    def _get_crop_size(self, image_size):
        x, y, w, h = self.crops[self.calls]
        return h, w

    def _rand_offset(self, margin):
        x, y, w, h = self.crops[self.calls]
        self.calls += 1
        return y, x


def test_empty_after_crop_instances(tmp_path):
    """§6: invalid in the key -> removed from both views; valid in
    the key but invalid in the reference -> kept in the key only. An
    instance whose box survives the crop but whose mask does not is
    invalid too."""
    (tmp_path / 'train2017').mkdir()
    (tmp_path / 'annotations').mkdir()
    write_coco(str(tmp_path), [
        dict(h=100, w=100, anns=[
            (1, _poly(5, 10, 25, 40), [5, 10, 20, 30]),  # id 1: left
            (18, _poly(70, 10, 90, 40), [70, 10, 20, 30]),  # id 2: right
            (17, _poly(40, 50, 60, 80), [40, 50, 20, 30]),  # id 3: middle
            # id 4: mask at x 60..66 but an (annotated) box from x 44
            (19, _poly(60, 85, 66, 95), [44, 85, 22, 10]),
        ])
    ])  # yapf: disable
    # key: left half (100 x 50); reference: right half, 90 rows (90 x 50)
    crop = ScriptedCrop([(0, 0, 50, 100), (50, 0, 50, 90)])
    ds = build_dataset(
        str(tmp_path), LOAD + [
            dict(
                type='PseudoKeyRefPair',
                view_transforms=[crop],
                pad_val=(1, 2, 3))
        ])
    pair = ds[0]
    key_ids, ref_ids = pair['gt_instances_ids']
    assert key_ids.tolist() == [1, 3]  # 2 cropped away, 4 has no mask
    # 1 is gone from the reference (kept in the key for detection only);
    # 2 and 4 are valid in the reference but invalid in the key
    assert ref_ids.tolist() == [3]
    classes = ds.metainfo['classes']
    assert [classes[lb]
            for lb in pair['gt_bboxes_labels'][0]] == ['person', 'cat']
    # different sizes, padded together; img_shape is each view's own
    assert pair['img_shape'] == [(100, 50), (90, 50)]
    assert pair['img'][1].shape == (100, 50, 3)
    assert (pair['img'][1][90:] == np.array([1, 2, 3])).all()
    assert pair['gt_masks'][1].masks.shape == (1, 100, 50)
    # the middle square: x 40..60 -> key x 40..50, reference x 0..10
    np.testing.assert_allclose(pair['gt_bboxes'][0][1], [40, 50, 50, 80])
    np.testing.assert_allclose(pair['gt_bboxes'][1][0], [0, 50, 10, 80])


def test_transform_needs_loaded_annotations(coco_root):
    ds = build_dataset(coco_root, [
        dict(type='LoadImageFromFile'),
        dict(type='PseudoKeyRefPair', view_transforms=[])
    ])
    with pytest.raises(KeyError, match='LoadAnnotations'):
        ds[0]
    with pytest.raises(TypeError, match='list of transforms'):
        TRANSFORMS.build(
            dict(type='PseudoKeyRefPair', view_transforms=TINY_VIEWS[0]))


# ---------------------------------------------------------------------------
# end to end: preprocessor + toy IDOL loss
# ---------------------------------------------------------------------------


def test_packed_pairs_train_the_toy_idol(coco_root):
    torch.manual_seed(0)
    ds = build_dataset(
        coco_root,
        pair_pipeline() + [dict(type='PackTrackInputs')],
        category_map=TOY_MAP,
        metainfo=dict(classes=TOY_CLASSES))
    # seeds whose first sample has views of different sizes
    batch = None
    for seed in range(20):
        items = [seeded(ds, i, seed * 10 + i) for i in range(len(ds))]
        samples = [it['data_samples'] for it in items]
        if samples[0][0].img_shape != samples[0][1].img_shape:
            batch = pseudo_collate(items)
            break
    assert batch is not None
    model = MODELS.build(Config.fromfile(TOY_CFG).model)
    # DeformableDETR's level_embed is uninitialised memory until then
    model.init_weights()
    model.train()
    data = model.data_preprocessor(batch, training=True)
    inputs, data_samples = data['inputs'], data['data_samples']
    assert inputs.dim() == 5 and inputs.shape[:2] == (2, 2)
    assert inputs.shape[-2] % 32 == 0 and inputs.shape[-1] % 32 == 0
    losses = model.loss(inputs, data_samples)
    assert 'loss_reid' in losses and 'loss_reid_aux' in losses
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name
    total = sum(v for v in losses.values())
    total.backward()
    assert losses['loss_reid'].item() > 0


def test_pretrain_configs_use_the_pieces():
    cfg = Config.fromfile(PRETRAIN_CFG)
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'CocoPseudoVideoDataset'
    assert ds.category_map == 'coco2ytvis2021'
    assert ds.ann_file == 'annotations/instances_train2017.json'
    assert [t.type for t in ds.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'PseudoKeyRefPair',
        'PackTrackInputs'
    ]
    assert cfg.train_cfg.max_iters == 59200
    assert cfg.param_scheduler[0].milestones == [22200, 44400]
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_dataloader.batch_size == 4  # x 8 GPUs = 32 (§10)
    cfg19 = Config.fromfile(PRETRAIN_CFG.replace('2021', '2019'))
    assert cfg19.train_dataloader.dataset.category_map == 'coco2ytvis2019'
    assert cfg19.model.detector.bbox_head.num_classes == 40
    # the transform builds from the config
    TRANSFORMS.build(ds.pipeline[2])


def test_official_80_class_pretrain_config():
    """The official recipe: the variant's augmentation and schedule, all 80
    COCO classes."""
    cfg = Config.fromfile(PRETRAIN_CFG.replace('-ytvis2021', ''))
    base = Config.fromfile(PRETRAIN_CFG)
    assert cfg.model.detector.bbox_head.num_classes == 80
    ds = cfg.train_dataloader.dataset
    assert ds.category_map == 'coco'
    assert ds.filter_cfg.filter_empty_gt is True
    assert ds.pipeline == base.train_dataloader.dataset.pipeline
    assert cfg.optim_wrapper == base.optim_wrapper
    assert cfg.param_scheduler == base.param_scheduler
    assert cfg.train_cfg.max_iters == 59200
