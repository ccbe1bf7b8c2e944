# Copyright (c) mmookd contributors. All rights reserved.
import json
import os
import os.path as osp

import pytest
from mmdet.datasets import BaseVideoDataset

from mmookd.datasets import YTVISDataset
from mmookd.datasets.converters import (
    convert_ytvis_to_cocovid,
    split_vis_videos,
    split_ytvis,
    ytvis_to_cocovid,
)
from mmookd.datasets.ytvis import YTVIS_2019_CLASSES, VISDataError
from mmookd.utils import load_tool
from mmookd.utils.cli import run_cli

TOOLS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
    'dataset_converters')


def comparable(ds):
    """The fields both loaders define, per video / frame / instance."""
    data_list = [ds.get_data_info(i) for i in range(len(ds))]
    keys = ('img_id', 'img_path', 'height', 'width', 'frame_id', 'video_id')
    return [
        dict(
            video_id=v['video_id'],
            video_length=v['video_length'],
            images=[
                dict(
                    **{k: img[k]
                       for k in keys},
                    instances=[{
                        k: inst[k]
                        for k in ('bbox', 'bbox_label', 'mask', 'instance_id',
                                  'ignore_flag')
                    } for inst in img['instances']]) for img in v['images']
            ]) for v in data_list
    ]


@pytest.mark.parametrize('test_mode', [True, False])
def test_round_trip_matches_mmdet_loader(make_ytvis, tmp_path, test_mode):
    info = make_ytvis()
    out = str(tmp_path / 'cocovid.json')
    counts = ytvis_to_cocovid(info['ann_file'], out)
    assert counts == dict(videos=2, images=8, annotations=11)

    cocovid = json.load(open(out))
    assert [c['id'] for c in cocovid['categories']] == list(range(1, 41))
    img = cocovid['images'][5]
    assert img == dict(
        id=6,
        video_id=2,
        frame_id=0,
        file_name='vid_b/00000.jpg',
        width=48,
        height=32)
    ann = cocovid['annotations'][0]
    assert (ann['instance_id'], ann['image_id'], ann['category_id'],
            ann['bbox'], ann['area']) == (11, 1, 1, [3, 2, 17, 10], 170)
    assert cocovid['videos'][0]['name'] == 'vid_a'

    kwargs = dict(
        data_prefix=dict(img_path=info['img_prefix']),
        metainfo=dict(classes=YTVIS_2019_CLASSES),
        serialize_data=False,
        test_mode=test_mode)
    mmdet_ds = BaseVideoDataset(ann_file=out, **kwargs)
    ours = YTVISDataset(ann_file=info['ann_file'], **kwargs)
    assert comparable(ours) == comparable(mmdet_ds)
    assert sum(
        len(img['instances']) for v in comparable(ours)
        for img in v['images']) == 11


def test_convert_valid_split(make_ytvis, tmp_path):
    info = make_ytvis('valid.json', with_annotations=False)
    cocovid = convert_ytvis_to_cocovid(info['data'])
    assert len(cocovid['images']) == 8 and cocovid['annotations'] == []
    out = str(tmp_path / 'valid_cocovid.json')
    ytvis_to_cocovid(info['ann_file'], out)
    ds = BaseVideoDataset(
        ann_file=out,
        data_prefix=dict(img_path=info['img_prefix']),
        metainfo=dict(classes=YTVIS_2019_CLASSES),
        serialize_data=False,
        test_mode=True)
    assert ds.num_all_imgs == 8


def test_convert_never_clobbers(make_ytvis, tmp_path):
    info = make_ytvis()
    before = open(info['ann_file'], 'rb').read()
    out = str(tmp_path / 'out.json')
    ytvis_to_cocovid(info['ann_file'], out)
    with pytest.raises(FileExistsError, match='--force'):
        ytvis_to_cocovid(info['ann_file'], out)
    ytvis_to_cocovid(info['ann_file'], out, force=True)
    with pytest.raises(FileExistsError, match='input file'):
        ytvis_to_cocovid(info['ann_file'], info['ann_file'], force=True)
    assert open(info['ann_file'], 'rb').read() == before
    # invalid input: clear error and nothing written
    bad = make_ytvis(
        'bad.json', mutate=lambda d: d['annotations'][0].update(video_id=9))
    with pytest.raises(VISDataError, match='unknown video id 9'):
        ytvis_to_cocovid(bad['ann_file'], str(tmp_path / 'never.json'))
    assert not osp.exists(tmp_path / 'never.json')
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def test_cli(make_ytvis, tmp_path, capsys):
    info = make_ytvis()
    tool = load_tool(osp.join(TOOLS, 'ytvis2cocovid.py'))
    out = str(tmp_path / 'cli.json')
    assert tool.main([info['ann_file'], out]) == 0
    assert '8 images' in capsys.readouterr().out
    assert run_cli(tool.main, [info['ann_file'], out]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'already exists' in err
    assert tool.main([info['ann_file'], out, '--force']) == 0

    split = load_tool(osp.join(TOOLS, 'split_ytvis.py'))
    out_dir = str(tmp_path / 'splits')
    assert split.main([info['ann_file'], out_dir, '--num-val', '1']) == 0
    assert sorted(os.listdir(out_dir)) == ['train_sub.json', 'val_sub.json']
    assert run_cli(split.main, [info['ann_file'], out_dir]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'already exists' in err


def many_videos(n: int = 20) -> dict:
    videos = [
        dict(
            id=100 + i,
            width=4,
            height=4,
            length=2,
            file_names=[f'v{i}/0.jpg', f'v{i}/1.jpg']) for i in range(n)
    ]
    anns = [
        dict(
            id=1000 + i * 2 + k,
            video_id=100 + i,
            category_id=1,
            iscrowd=0,
            segmentations=[None, None]) for i in range(n) for k in range(2)
    ]
    return dict(
        info={},
        videos=videos,
        annotations=anns,
        categories=[dict(id=1, name='a')])


def test_split_by_video():
    data = many_videos()
    train, val = split_vis_videos(data, val_ratio=0.25, seed=3)
    train_ids = [v['id'] for v in train['videos']]
    val_ids = [v['id'] for v in val['videos']]
    assert len(val_ids) == 5 and len(train_ids) == 15
    assert sorted(train_ids + val_ids) == [v['id'] for v in data['videos']]
    assert train_ids == sorted(train_ids) and val_ids == sorted(val_ids)
    assert {a['video_id'] for a in val['annotations']} == set(val_ids)
    assert len(train['annotations']) == 30
    assert train['categories'] == data['categories'] and 'info' in val
    # seeded: reproducible, and the seed matters
    again = split_vis_videos(data, val_ratio=0.25, seed=3)[1]
    assert [v['id'] for v in again['videos']] == val_ids
    other = split_vis_videos(data, val_ratio=0.25, seed=4)[1]
    assert [v['id'] for v in other['videos']] != val_ids
    assert len(split_vis_videos(data, num_val=2)[1]['videos']) == 2
    assert len(data['videos']) == 20  # input untouched

    no_gt = dict(data)
    no_gt.pop('annotations')
    with pytest.raises(VISDataError, match='no annotations'):
        split_vis_videos(no_gt)


def test_split_files_load(make_ytvis, tmp_path):
    info = make_ytvis()
    before = open(info['ann_file'], 'rb').read()
    out_dir = str(tmp_path / 'splits')
    train_file, val_file = split_ytvis(
        info['ann_file'], out_dir, num_val=1, seed=0)
    ids = []
    for ann_file in (train_file, val_file):
        ds = YTVISDataset(
            ann_file=ann_file,
            data_prefix=dict(img_path=info['img_prefix']),
            serialize_data=False,
            test_mode=True)
        assert len(ds) == 1
        ids.append(ds.get_data_info(0)['video_id'])
    assert sorted(ids) == [1, 2]
    with pytest.raises(FileExistsError, match='already exists'):
        split_ytvis(info['ann_file'], out_dir, num_val=1)
    assert open(info['ann_file'], 'rb').read() == before
