# Copyright (c) mmookd contributors. All rights reserved.
import hashlib
import os
import os.path as osp

import pytest
import torch
from mmdet.datasets.samplers import (
    TrackAspectRatioBatchSampler,
    TrackImgSampler,
)
from mmdet.registry import DATASETS
from mmdet.structures import TrackDataSample
from mmengine.dataset import DefaultSampler
from mmengine.registry import init_default_scope

from mmookd.datasets import YTVISDataset
from mmookd.datasets.ytvis import (
    OVIS_CLASSES,
    YTVIS_2019_CLASSES,
    YTVIS_2019_METAINFO,
    YTVIS_2021_CLASSES,
    VISDataError,
)

# pipelines are built by mmengine's Compose: resolve names in mmdet's scope
init_default_scope('mmdet')

TRAIN_PIPELINE = [
    dict(type='KeyRefFrameSample', frame_range=2),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=(96, 64), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs'),
]


def build(info: dict, **kwargs) -> YTVISDataset:
    # serialize_data=False: mmengine's serialization runs gc.collect()
    # (~0.2 s per dataset); the pipeline test keeps the default.
    cfg = dict(
        type='YTVISDataset',
        ann_file=info['ann_file'],
        data_prefix=dict(img_path=info['img_prefix']),
        serialize_data=False,
        test_mode=True)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_load_counts_and_instances(make_ytvis):
    info = make_ytvis()
    ds = build(info)
    assert len(ds) == 2
    assert ds.num_all_imgs == 8
    v1, v2 = ds.get_data_info(0), ds.get_data_info(1)
    assert (v1['video_id'], v1['video_length']) == (1, 5)
    assert (v2['video_id'], v2['video_length']) == (2, 3)
    img_ids = [img['img_id'] for v in (v1, v2) for img in v['images']]
    assert img_ids == list(range(1, 9))

    img = v1['images'][0]
    assert img['img_path'] == osp.join(info['img_prefix'], 'vid_a/00000.jpg')
    assert (img['height'], img['width'], img['frame_id'],
            img['video_id']) == (32, 48, 0, 1)
    person, dog = img['instances']
    assert person['bbox'] == [3.0, 2.0, 20.0, 12.0]
    assert all(isinstance(v, float) for v in person['bbox'])
    assert person['bbox_label'] == YTVIS_2019_CLASSES.index('person')
    assert person['instance_id'] == 11 and person['ignore_flag'] == 0
    native = info['data']['annotations']
    assert person['mask'] == native[0]['segmentations'][0]
    # bbox computed from the compressed RLE when the JSON has none
    assert dog['bbox'] == [25.0, 10.0, 45.0, 30.0]
    assert dog['bbox_label'] == YTVIS_2019_CLASSES.index('dog')
    assert dog['mask'] == native[1]['segmentations'][0]

    # null frames produce no instance
    assert [i['instance_id'] for i in v1['images'][2]['instances']] == [12]
    assert [len(i['instances']) for i in v2['images']] == [1, 0, 1]
    cat = v2['images'][0]['instances'][0]
    assert cat['bbox'] == [5.0, 5.0, 25.0, 20.0]
    assert cat['mask'] == native[2]['segmentations'][0]
    assert ds.get_cat_ids(1) == [YTVIS_2019_CLASSES.index('cat')] * 2
    assert ds.get_cat_ids((0, 2)) == [YTVIS_2019_CLASSES.index('dog')]


def test_classes_from_json_and_presets(make_ytvis):
    info = make_ytvis()
    # JSON categories are listed in reverse id order: sorted by id
    ds = build(info)
    assert tuple(ds.metainfo['classes']) == YTVIS_2019_CLASSES
    assert ds.metainfo['cat_ids'] == list(range(1, 41))
    assert ds.cat_ids == list(range(1, 41))
    assert ds.label2cat[7] == 8

    for kwargs in (dict(metainfo=YTVIS_2019_METAINFO),
                   dict(dataset_version='2019')):
        ds = build(info, **kwargs)
        assert tuple(ds.metainfo['classes']) == YTVIS_2019_CLASSES
        assert ds.metainfo['cat_ids'] == list(range(1, 41))

    # a subset, mapped by name; other categories are skipped
    ds = build(info, metainfo=dict(classes=('dog', 'person')))
    assert ds.cat_ids == [8, 1]
    labels = [(i['instance_id'], i['bbox_label'])
              for i in ds.get_data_info(0)['images'][0]['instances']]
    assert labels == [(11, 1), (12, 0)]
    assert ds.get_data_info(1)['images'][0]['instances'] == []

    with pytest.raises(VISDataError, match='Person') as e:
        build(info, dataset_version='ovis')
    assert 'train.json' in str(e.value)
    with pytest.raises(ValueError, match='dataset_version'):
        build(info, dataset_version='2018')


def test_versions_coexist_without_class_mutation(make_ytvis):
    info19 = make_ytvis('y19.json')
    cats21 = [dict(id=i + 1, name=n) for i, n in enumerate(YTVIS_2021_CLASSES)]
    info21 = make_ytvis(
        'y21.json',
        categories=cats21,
        mutate=lambda d: [
            a.update(category_id=YTVIS_2021_CLASSES.index(n) + 1)
            for a, n in zip(d['annotations'], ('person', 'dog', 'cat'))
        ])
    ds19 = build(info19, dataset_version='2019')
    ds21 = build(info21, dataset_version='2021')
    ds_ovis_meta = YTVISDataset.METAINFO
    assert tuple(ds19.metainfo['classes']) == YTVIS_2019_CLASSES
    assert tuple(ds21.metainfo['classes']) == YTVIS_2021_CLASSES
    assert ds_ovis_meta == {} and YTVIS_2019_METAINFO['classes'] == \
        YTVIS_2019_CLASSES
    assert len(OVIS_CLASSES) == 25 and OVIS_CLASSES[-1] == 'Vehical'
    inst19 = ds19.get_data_info(0)['images'][0]['instances'][0]
    inst21 = ds21.get_data_info(0)['images'][0]['instances'][0]
    assert inst19['bbox_label'] == YTVIS_2019_CLASSES.index('person')
    assert inst21['bbox_label'] == YTVIS_2021_CLASSES.index('person')


def test_valid_split_without_annotations(make_ytvis):
    info = make_ytvis('valid.json', with_annotations=False)
    ds = build(info, dataset_version='2019')
    assert len(ds) == 2 and ds.num_all_imgs == 8
    assert all(img['instances'] == [] for i in range(len(ds))
               for img in ds.get_data_info(i)['images'])
    info = make_ytvis('valid2.json', mutate=lambda d: d.update(annotations=[]))
    assert build(info).num_all_imgs == 8


def test_train_filtering(make_ytvis):
    ds = build(make_ytvis(), test_mode=False)
    # mmdet's default drops frames without instances
    assert [ds.get_len_per_video(i) for i in range(2)] == [5, 2]
    assert ds.get_data_info(1)['video_length'] == 2
    ds = build(
        make_ytvis(), test_mode=False, filter_cfg=dict(filter_empty_gt=False))
    assert ds.num_all_imgs == 8
    # videos left without frames are dropped
    info = make_ytvis(
        'one.json',
        mutate=lambda d: d.update(annotations=d['annotations'][:2]))
    ds = build(info, test_mode=False)
    assert len(ds) == 1 and ds.get_data_info(0)['video_id'] == 1


def test_train_pipeline_and_samplers(make_ytvis):
    ds = build(
        make_ytvis(),
        test_mode=False,
        pipeline=TRAIN_PIPELINE,
        serialize_data=True)
    sampler = TrackImgSampler(ds, seed=0)
    indices = list(sampler)
    assert len(indices) == 7
    for idx in indices:
        out = ds[idx]
        sample = out['data_samples']
        assert isinstance(sample, TrackDataSample)
        assert len(sample) == 2
        assert out['inputs'].shape[:2] == (2, 3)
        assert sample.key_frames_inds == [0]
        assert sample.ref_frames_inds == [1]
        key, ref = sample.get_key_frames()[0], sample.get_ref_frames()[0]
        assert key.frame_id < ref.frame_id or ds.get_len_per_video(idx[0]) == 1
        anchor = ds.get_data_info(idx[0])['images'][idx[1]]['frame_id']
        assert anchor in (key.frame_id, ref.frame_id)
        for frame in (key, ref):
            ids = frame.gt_instances.instances_ids.tolist()
            assert set(ids) <= {11, 12, 21}
            assert len(frame.gt_instances.masks) == len(ids)
            assert frame.gt_instances.masks.height == out['inputs'].shape[2]
            assert frame.metainfo['ori_video_length'] == ds.get_len_per_video(
                idx[0])
            assert frame.metainfo['video_length'] == 2
        if idx[0] == 0:
            # the dog track is in every frame of video 1
            assert 12 in key.gt_instances.instances_ids.tolist()
            assert 12 in ref.gt_instances.instances_ids.tolist()

    batches = list(TrackAspectRatioBatchSampler(sampler, batch_size=2))
    assert sum(len(b) for b in batches) == 7
    videos = list(DefaultSampler(ds, shuffle=True, seed=0))
    assert sorted(videos) == [0, 1]
    assert len(ds[videos[0]]['data_samples']) == 2


def test_test_pipeline_whole_video(make_ytvis):
    pipeline = [
        dict(
            type='TransformBroadcaster',
            transforms=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(96, 64), keep_ratio=True),
                dict(type='LoadTrackAnnotations', with_mask=True),
            ]),
        dict(type='PackTrackInputs')
    ]
    ds = build(make_ytvis(), pipeline=pipeline)
    out = ds[0]
    assert out['inputs'].shape == torch.Size([5, 3, 64, 96])
    assert len(out['data_samples']) == 5
    one = ds[(1, 2)]
    assert len(one['data_samples']) == 1


def _set(path, value):
    """mutate helper: set ``d[k1][k2]...`` = value."""

    def mutate(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value

    return mutate


def _drop_last_seg(d):
    d['annotations'][0]['segmentations'].pop()


def _drop_bbox(d):
    d['annotations'][2]['bboxes'].append(None)


BAD_CASES = {
    'missing_key':
    (lambda d: d.pop('videos'), ["missing top-level key(s) ['videos']"]),
    'empty_video': (lambda d: d['videos'][1].update(file_names=[], length=0),
                    ['video 2', 'empty video']),
    'length_mismatch':
    (_set(['videos', 0, 'length'],
          4), ["video 1 ('vid_a')", "'length' is 4", '5 frames']),
    'seg_length': (_drop_last_seg, [
        "video 1 ('vid_a')", 'annotation 11', "'segmentations' has 4",
        'video has 5 frames'
    ]),
    'bbox_length': (_drop_bbox, [
        "video 2 ('vid_b')", 'annotation 21', "'bboxes' has 4",
        'video has 3 frames'
    ]),
    'mask_size': (_set(['annotations', 1, 'segmentations', 3, 'size'],
                       [16, 16]), [
                           "video 1 ('vid_a')", 'annotation 12', 'frame 3',
                           'mask size [16, 16]', '[32, 48]'
                       ]),
    'unknown_category':
    (_set(['annotations', 2, 'category_id'],
          99), ['video 2', 'annotation 21', 'unknown category id 99']),
    'unknown_video': (_set(['annotations', 0, 'video_id'],
                           7), ['annotation 11', 'unknown video id 7']),
    'duplicate_video': (_set(['videos', 1, 'id'],
                             1), ['duplicate video id 1', 'vid_b']),
    'duplicate_ann': (_set(['annotations', 2, 'id'],
                           11), ['duplicate annotation id 11', 'video 2']),
    'bad_segmentation': (_set(['annotations', 0, 'segmentations', 1], 'oops'),
                         ['annotation 11', 'frame 1', 'segmentation']),
}


@pytest.mark.parametrize('case', sorted(BAD_CASES))
def test_bad_json_content(make_ytvis, case):
    mutate, fragments = BAD_CASES[case]
    info = make_ytvis(f'bad_{case}.json', mutate=mutate)
    with pytest.raises(VISDataError) as e:
        build(info)
    msg = str(e.value)
    assert f'bad_{case}.json' in msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)


def test_missing_and_corrupt_file(make_ytvis, tmp_path):
    with pytest.raises(VISDataError, match='not found') as e:
        build(dict(ann_file=str(tmp_path / 'nope.json'), img_prefix=''))
    assert 'nope.json' in str(e.value)

    info = make_ytvis()
    text = open(info['ann_file']).read()
    corrupt = tmp_path / 'corrupt.json'
    corrupt.write_text(text[:50] + '\n' + text[50:60])
    with pytest.raises(VISDataError) as e:
        build(dict(ann_file=str(corrupt), img_prefix=info['img_prefix']))
    msg = str(e.value)
    assert 'corrupt.json' in msg and 'corrupt JSON' in msg
    assert 'line 2' in msg and 'column' in msg

    listed = tmp_path / 'list.json'
    listed.write_text('[]')
    with pytest.raises(VISDataError, match='top level'):
        build(dict(ann_file=str(listed), img_prefix=''))


def test_missing_frame_files(make_ytvis):
    info = make_ytvis()
    missing = osp.join(info['img_prefix'], 'vid_b', '00001.jpg')
    os.remove(missing)
    with pytest.raises(VISDataError) as e:
        build(info)
    msg = str(e.value)
    for fragment in ('train.json', '1 of 8 frame files are missing',
                     'video 2 frame 1', missing, 'check_files=False'):
        assert fragment in msg, (fragment, msg)
    # a missing folder: every frame of it is reported
    info2 = make_ytvis('other.json')
    ds = build(
        info2,
        data_prefix=dict(img_path=osp.join(info['root'], 'elsewhere')),
        lazy_init=True)
    with pytest.raises(VISDataError, match='8 of 8 frame files'):
        ds.full_init()

    assert build(info, check_files=False).num_all_imgs == 8
    # non-local image prefixes are not checked
    assert build(
        info, data_prefix=dict(img_path='s3://bucket/x')).num_all_imgs == 8
    ds = build(info, backend_args=dict(backend='petrel'), lazy_init=True)
    assert not ds._is_local_backend()


def _fingerprint(path):
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return digest, os.stat(path).st_mtime_ns


def test_user_data_unchanged(make_ytvis):
    info = make_ytvis()
    frame = osp.join(info['img_prefix'], 'vid_a', '00000.jpg')
    before = _fingerprint(info['ann_file']), _fingerprint(frame)
    ds = build(info, test_mode=False, pipeline=TRAIN_PIPELINE)
    ds[0]
    build(info)
    assert (_fingerprint(info['ann_file']), _fingerprint(frame)) == before
    assert sorted(os.listdir(info['root'])) == ['JPEGImages', 'train.json']
