# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline knowledge bank: file round trip and its errors, the build
over whole videos (equal to the teacher's own knowledge, independent of the
chunk size), and the distiller reading exactly the bank entries of the
frame's instances (pasted ones through their source) with no teacher."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from test_idol import TOY_CFG, make_video

import mmookd.models  # noqa: F401
from mmookd.apis import build_knowledge_bank
from mmookd.apis.knowledge_bank import bank_dataset_cfg
from mmookd.models.utils import KnowledgeBank, KnowledgeBankError
from mmookd.models.utils.knowledge_bank import file_sha256, model_cfg_sha256
from mmookd.utils import set_data_root

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER_CFG = osp.join(REPO,
                       'configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def small_bank(meta=None):
    return KnowledgeBank(
        embeds=torch.arange(12.).view(3, 4),
        video_ids=torch.tensor([0, 0, 5]),
        instance_ids=torch.tensor([1, 2, 1]),
        labels=torch.tensor([2, 5, 0]),
        meta=meta)


def test_round_trip_lookup_and_file_errors(tmp_path):
    path = str(tmp_path / 'bank.pth')
    small_bank(dict(ann_file='a.json')).save(path)
    bank = KnowledgeBank.load(path)
    assert bank.path == path and len(bank) == 3
    assert torch.equal(bank.embeds, torch.arange(12.).view(3, 4))
    assert bank.labels.tolist() == [2, 5, 0]
    assert bank.meta['ann_file'] == 'a.json'
    assert torch.equal(
        bank.features([(5, 1), (0, 1)]),
        torch.tensor([[8., 9, 10, 11], [0, 1, 2, 3]]))
    assert (0, 2) in bank and (5, 2) not in bank
    with pytest.raises(KeyError, match=r'video 5, instance 2'):
        bank.features([(0, 1), (5, 2)])
    with pytest.raises(KnowledgeBankError, match='two entries'):
        KnowledgeBank(torch.zeros(2, 4), [0, 0], [1, 1])
    torch.save(dict(embeds=torch.zeros(1)), str(tmp_path / 'other.pth'))
    with pytest.raises(KnowledgeBankError, match='not a knowledge bank'):
        KnowledgeBank.load(str(tmp_path / 'other.pth'))
    data = torch.load(path)
    data['version'] = 99
    torch.save(data, str(tmp_path / 'v99.pth'))
    with pytest.raises(KnowledgeBankError, match='version 99'):
        KnowledgeBank.load(str(tmp_path / 'v99.pth'))
    with pytest.raises(FileNotFoundError, match='build_knowledge_bank'):
        KnowledgeBank.load(str(tmp_path / 'missing.pth'))


def test_bank_from_another_teacher_or_dataset_or_stale(tmp_path):
    ckpt, ann = tmp_path / 'teacher.pth', tmp_path / 'train.json'
    ckpt.write_bytes(b'weights')
    ann.write_text('{"videos": []}')
    model = dict(type='OfflineTeacher', online_checkpoint='x.pth', n=1)
    bank = small_bank(
        dict(
            teacher_config_sha256=model_cfg_sha256(model),
            teacher_checkpoint=str(ckpt),
            teacher_checkpoint_sha256=file_sha256(str(ckpt)),
            ann_file=str(ann),
            ann_file_sha256=file_sha256(str(ann))))
    # the online checkpoint path is not part of the teacher's identity
    bank.check(
        teacher_config=dict(model, online_checkpoint=None),
        teacher_checkpoint=str(ckpt),
        ann_file=str(ann))
    with pytest.raises(KnowledgeBankError, match='another teacher config'):
        bank.check(teacher_config=dict(model, n=2))
    other = tmp_path / 'other.pth'
    other.write_bytes(b'other weights')
    with pytest.raises(KnowledgeBankError, match='another teacher checkpoint'):
        bank.check(teacher_checkpoint=str(other))
    ckpt.write_bytes(b'retrained weights')
    with pytest.raises(KnowledgeBankError, match='stale.*teacher checkpoint'):
        bank.check(teacher_checkpoint=str(ckpt))
    other_ann = tmp_path / 'val.json'
    other_ann.write_text('{"videos": [1]}')
    with pytest.raises(KnowledgeBankError, match='another annotation file'):
        bank.check(ann_file=str(other_ann))
    ann.write_text('{"videos": [2]}')
    with pytest.raises(KnowledgeBankError, match='stale.*annotation file'):
        bank.check(ann_file=str(ann))


def random_teacher_checkpoint(cfg, tmp_path) -> str:
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.model)
    teacher.init_weights()
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path


def test_bank_is_the_teachers_whole_video_knowledge(tiny_toyvis, tmp_path):
    cfg = Config.fromfile(TEACHER_CFG)
    cfg.model.online_checkpoint = None
    set_data_root(cfg, tiny_toyvis)
    ckpt = random_teacher_checkpoint(cfg, tmp_path)
    out = str(tmp_path / 'bank.pth')
    bank = build_knowledge_bank(cfg, ckpt, out=out, log=None)
    loaded = KnowledgeBank.load(out)
    assert torch.equal(loaded.embeds, bank.embeds)
    ann = cfg.train_dataloader.dataset.data_root + \
        cfg.train_dataloader.dataset.ann_file
    import json
    with open(ann) as f:
        anns = json.load(f)['annotations']
    assert sorted(
        zip(loaded.video_ids.tolist(),
            loaded.instance_ids.tolist())) == sorted(
                (a['video_id'], a['id']) for a in anns)
    assert loaded.meta['ann_file_sha256'] == file_sha256(ann)
    assert loaded.meta['teacher_checkpoint_sha256'] == file_sha256(ckpt)
    # the toy teacher reads f_off out of the frame queries
    assert loaded.meta['feature'] == (
        'query_readout through the frozen embedding head')
    loaded.check(teacher_config=cfg, teacher_checkpoint=ckpt, ann_file=ann)

    # independently: the teacher on the whole first video, eq. 2 summed
    # over each instance's frames, its argmin (eq. 3)
    from mmookd.models.vis.ookd import build_frozen_teacher
    teacher = build_frozen_teacher(cfg, ckpt)
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(bank_dataset_cfg(cfg))
    data = teacher.data_preprocessor(pseudo_collate([dataset[0]]), False)
    video = data['data_samples'][0]
    frames = [video[i] for i in range(len(video))]
    know = teacher.video_knowledge(data['inputs'][0], frames)
    qfa = TASK_UTILS.build(dict(type='QFAAssigner'))
    sums = {}
    for t, frame in enumerate(frames):
        h, w = frame.metainfo['img_shape']
        from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
        pred = InstanceData(
            scores=know['cls_scores'],
            bboxes=bbox_cxcywh_to_xyxy(know['bbox_preds'][t]) *
            torch.tensor([w, h, w, h]))
        gt = frame.gt_instances
        cost = qfa.get_cost(pred,
                            InstanceData(labels=gt.labels, bboxes=gt.bboxes))
        for m, inst in enumerate(gt.instances_ids.tolist()):
            sums[inst] = sums.get(inst, 0) + cost[:, m]
    video_id = frames[0].metainfo['video_id']
    for inst, total in sums.items():
        expected = know['embeds'][int(total.argmin())]
        assert torch.allclose(
            loaded.features([(video_id, inst)])[0], expected, atol=1e-6)

    # chunked online pass (bounded memory): the same knowledge
    chunked = build_knowledge_bank(cfg, ckpt, chunk_size=2, log=None)
    assert torch.allclose(chunked.embeds, bank.embeds, atol=1e-5)


def test_bank_over_named_videos_for_a_teacher_that_trains_nothing(
        tiny_toyvis, tmp_path):
    """The token-average teacher's config has no training set: the tool
    reads the videos from --ann-file / --img-dir (here ToyVIS val)."""
    token_cfg = osp.join(
        REPO, 'configs/toy/token-average-teacher_r18-tiny_toyvis.py')
    cfg = Config.fromfile(token_cfg)
    with pytest.raises(ValueError, match='--ann-file and --img-dir'):
        bank_dataset_cfg(cfg)
    with pytest.raises(ValueError, match='both ann_file and img_dir'):
        bank_dataset_cfg(cfg, ann_file='val.json')
    ann = osp.join(tiny_toyvis, 'annotations', 'toyvis_val.json')
    img_dir = osp.join(tiny_toyvis, 'val', 'JPEGImages')
    # the teacher's weights: the frozen toy IDOL (pre-trained: it tracks)
    from mmookd.models.vis.ookd import build_frozen_teacher
    cfg.model.online_checkpoint = osp.join(
        REPO, 'checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth')
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=build_frozen_teacher(cfg).state_dict()), ckpt)
    from mmookd.utils import load_tool
    tool = load_tool('tools/analysis/build_knowledge_bank.py')
    out = str(tmp_path / 'bank.pth')
    with pytest.raises(ValueError, match='go together'):
        tool.main([token_cfg, ckpt, '--out', out, '--ann-file', ann])
    with pytest.raises(ValueError, match='give the paths in full'):
        tool.main([
            token_cfg, ckpt, '--out', out, '--ann-file', ann, '--img-dir',
            img_dir, '--data-root', tiny_toyvis
        ])
    no_test = cfg.copy()
    no_test.test_dataloader = None
    with pytest.raises(ValueError, match='no test_dataloader'):
        bank_dataset_cfg(no_test, ann, img_dir)
    bank = tool.main([
        token_cfg, ckpt, '--out', out, '--ann-file', ann, '--img-dir', img_dir,
        '--threads', '1'
    ])
    import json
    with open(ann) as f:
        anns = json.load(f)['annotations']
    # a random online model finds nothing: a clear error, not an argmin one
    cfg.model.online_checkpoint = None
    (tmp_path / 'random').mkdir()
    random_ckpt = random_teacher_checkpoint(cfg, tmp_path / 'random')
    with pytest.raises(ValueError, match='no query on video'):
        build_knowledge_bank(
            cfg, random_ckpt, ann_file=ann, img_dir=img_dir, log=None)
    assert sorted(zip(bank.video_ids.tolist(),
                      bank.instance_ids.tolist())) == sorted(
                          (a['video_id'], a['id']) for a in anns)
    assert KnowledgeBank.load(out).meta['ann_file_sha256'] == file_sha256(ann)


def ookd_bank_cfg(path, **kwargs):
    cfg = Config.fromfile(TOY_CFG).model
    cfg.type = 'OOKD'
    cfg.knowledge_bank = path
    cfg.update(kwargs)
    return cfg


def clip_sample(num_frames=3):
    video = make_video(num_frames=num_frames)  # video 0, ids 1, 2
    video['data_samples'][0].set_metainfo(
        dict(key_frames_inds=[0], ref_frames_inds=list(range(1, num_frames))))
    return video


def distilled_targets(model, video):
    """The teacher features ``loss_kd`` receives in one training step."""
    seen = []
    original = model.loss_kd.forward

    def spy(student, teacher, *args, **kwargs):
        seen.append(teacher.detach().clone())
        return original(student, teacher, *args, **kwargs)

    model.loss_kd.forward = spy
    data = model.data_preprocessor(video, training=True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_kd'])
    return seen[0]


def test_distiller_reads_the_bank_entries_no_teacher(tmp_path):
    path = str(tmp_path / 'bank.pth')
    embeds = torch.randn(3, 64)
    KnowledgeBank(embeds, [0, 0, 7], [1, 2, 70], labels=[2, 5, 5]).save(path)
    torch.manual_seed(0)
    model = MODELS.build(ookd_bank_cfg(path))
    model.init_weights()
    model.train()
    # key frame then reference frame, each: instances 1 and 2 (QFA keeps
    # every ground truth: no max_cost)
    teacher = distilled_targets(model, clip_sample())
    assert torch.equal(teacher, embeds[[0, 1, 0, 1]])
    assert model._teacher is None  # no teacher was built
    # a pasted instance (id 2 here) reads its source's entry
    video = clip_sample()
    for frame in video['data_samples'][0]:
        frame.set_metainfo(dict(instance_sources={2: (7, 70)}))
    teacher = distilled_targets(model, video)
    assert torch.equal(teacher, embeds[[0, 2, 0, 2]])


def test_distiller_bank_errors(tmp_path):
    path = str(tmp_path / 'bank.pth')
    KnowledgeBank(torch.randn(1, 64), [0], [1], labels=[2]).save(path)
    torch.manual_seed(0)
    model = MODELS.build(ookd_bank_cfg(path)).train()
    data = model.data_preprocessor(clip_sample(), training=True)
    with pytest.raises(KeyError, match='video 0, instance 2'):
        model(**data, mode='loss')
    KnowledgeBank(torch.randn(2, 64), [0, 0], [1, 2], labels=[2, 3]).save(path)
    model = MODELS.build(ookd_bank_cfg(path)).train()
    data = model.data_preprocessor(clip_sample(), training=True)
    with pytest.raises(ValueError, match='has label 3.*instance_sources'):
        model(**data, mode='loss')
    with pytest.raises(ValueError, match="association='qfa'"):
        MODELS.build(ookd_bank_cfg(path, association='index'))
    with pytest.raises(KeyError, match='knowledge_bank takes'):
        MODELS.build(ookd_bank_cfg(dict(file=path)))
