# Copyright (c) mmookd contributors. All rights reserved.
"""Build OOKD's offline knowledge bank (paper Sec. 3.2-3.3).

The frozen teacher runs once over every *whole* training video (its
online pass in chunks, so memory is bounded for any length; the
aggregator over all frames), and QFA (eqs. 2-3) picks, on the teacher
side, the offline query of every ground-truth instance: per frame the
cost ``S[n, m]`` of eq. 2, summed over the frames the instance is in, its
argmin over the queries (eq. 3 at the video level: one offline feature per
instance). The bank stores that query's embedding per ``(video id,
instance id)`` (:class:`mmookd.models.utils.KnowledgeBank`).
"""
import copy
import time
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from mmdet.registry import DATASETS, TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, get_box_tensor
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from ..models.utils.knowledge_bank import (
    KnowledgeBank,
    file_sha256,
    model_cfg_sha256,
)
from ..models.vis.ookd import build_frozen_teacher

__all__ = ['build_knowledge_bank', 'bank_dataset_cfg', 'video_bank_entries']


def _inner_dataset(cfg: dict) -> dict:
    """The video dataset inside dataset wrappers (MultiImageMixDataset)."""
    while 'dataset' in cfg and cfg.get('type') != 'YTVISDataset':
        cfg = cfg['dataset']
    return cfg


def bank_dataset_cfg(cfg: Config,
                     ann_file: Optional[str] = None,
                     img_dir: Optional[str] = None) -> dict:
    """The training set of ``cfg``, read as whole videos.

    The train dataloader's (innermost) dataset in test mode (every frame,
    no frame sampling) with the test pipeline (resize as at inference, the
    ground truth loaded). ``ann_file`` (a YouTube-VIS JSON) and ``img_dir``
    (its frame folder) name the videos instead: for teachers whose config
    trains nothing (the token average) or a bank over another set.
    """
    if (ann_file is None) != (img_dir is None):
        raise ValueError('give both ann_file and img_dir, or neither')
    if not cfg.get('test_dataloader'):
        raise ValueError('the config has no test_dataloader: the bank reads '
                         'the videos with its test pipeline')
    test = cfg.test_dataloader.dataset.to_dict()
    while 'pipeline' not in test:
        test = test['datasets'][0] if 'datasets' in test else test['dataset']
    train = (
        _inner_dataset(cfg.train_dataloader.dataset.to_dict())
        if cfg.get('train_dataloader') else None)
    if ann_file is not None:
        # the named videos, read as the config reads its data (class list,
        # dataset version, file backend)
        source = train or test
        dataset = dict(
            type='YTVISDataset',
            data_root='',
            ann_file=ann_file,
            data_prefix=dict(img_path=img_dir))
        dataset.update({
            key: copy.deepcopy(source[key])
            for key in ('dataset_version', 'metainfo', 'backend_args')
            if key in source
        })
    elif train is None:
        raise ValueError('the config has no train_dataloader: which '
                         'training set is the bank for? (name its videos: '
                         'ann_file and img_dir, or --ann-file and '
                         '--img-dir of tools/analysis/'
                         'build_knowledge_bank.py)')
    else:
        dataset = copy.deepcopy(train)
    pipeline = copy.deepcopy(test['pipeline'])
    text = str(pipeline)
    if 'LoadTrackAnnotations' not in text:
        raise ValueError('the test pipeline does not load the annotations '
                         '(LoadTrackAnnotations): the bank needs them')
    dataset.update(test_mode=True, pipeline=pipeline)
    dataset.pop('filter_cfg', None)
    return dataset


@torch.no_grad()
def video_bank_entries(teacher: torch.nn.Module, data: dict,
                       assigner: Any) -> List[Dict[str, Any]]:
    """The bank entries of one whole video.

    Args:
        teacher: A frozen :class:`OfflineTeacher`.
        data (dict): One collated, preprocessed video (``inputs`` (1, T,
            ...), ``data_samples``).
        assigner: The QFA assigner (``get_cost``, eq. 2).

    Returns:
        list[dict]: Per ground-truth instance: ``video_id``,
        ``instance_id``, ``label``, ``embed`` (C,), ``num_frames``,
        ``cost`` (mean eq.-2 cost of the chosen query), ``agreement``.
    """
    video = data['data_samples'][0]
    frames = [video[i] for i in range(len(video))]
    order = sorted(
        range(len(frames)), key=lambda i: frames[i].metainfo['frame_id'])
    frames = [frames[i] for i in order]
    knowledge = teacher.video_knowledge(data['inputs'][0][order], frames)
    cls_scores = knowledge['cls_scores']
    if len(cls_scores) == 0 and any(len(f.gt_instances) for f in frames):
        # a token-average teacher has one query per online track
        raise ValueError(
            f'knowledge bank: the teacher has no query on video '
            f"{frames[0].metainfo['video_id']} (its online model found no "
            'track there): no knowledge for its instances')
    sums: Dict[int, torch.Tensor] = {}
    argmins: Dict[int, List[int]] = {}
    labels: Dict[int, int] = {}
    for t, frame in enumerate(frames):
        gt = frame.gt_instances
        if len(gt) == 0:
            continue
        img_h, img_w = frame.metainfo['img_shape'][:2]
        factor = cls_scores.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(
            scores=cls_scores,
            bboxes=bbox_cxcywh_to_xyxy(knowledge['bbox_preds'][t]) * factor)
        gt_instances = InstanceData(
            labels=gt.labels.to(cls_scores.device),
            bboxes=get_box_tensor(gt.bboxes).to(cls_scores.device))
        cost = assigner.get_cost(pred, gt_instances)  # (N, M_t)
        for m, inst in enumerate(gt.instances_ids.tolist()):
            sums[inst] = sums.get(inst, 0) + cost[:, m]
            argmins.setdefault(inst, []).append(int(cost[:, m].argmin()))
            labels.setdefault(inst, int(gt.labels[m]))
    video_id = int(frames[0].metainfo['video_id'])
    entries = []
    for inst in sorted(sums):
        query = int(sums[inst].argmin())
        picks = argmins[inst]
        entries.append(
            dict(
                video_id=video_id,
                instance_id=inst,
                label=labels[inst],
                embed=knowledge['embeds'][query].float().cpu(),
                num_frames=len(picks),
                cost=float(sums[inst][query]) / len(picks),
                agreement=sum(p == query for p in picks) / len(picks)))
    return entries


def build_knowledge_bank(
        teacher_config: Union[str, Config],
        teacher_checkpoint: str,
        out: Optional[str] = None,
        data_root: Optional[str] = None,
        dataset: Optional[dict] = None,
        ann_file: Optional[str] = None,
        img_dir: Optional[str] = None,
        device: Union[str, torch.device] = 'cpu',
        chunk_size: Optional[int] = None,
        assigner: Optional[dict] = None,
        log: Optional[Callable[[str], None]] = print) -> KnowledgeBank:
    """Run the frozen teacher over every whole training video and store
    one offline feature per ground-truth instance.

    Args:
        teacher_config (str | Config): The teacher's config file.
        teacher_checkpoint (str): Its trained checkpoint.
        out (str, optional): Write the bank here.
        data_root (str, optional): Read the data from here instead of the
            config's data root.
        dataset (dict, optional): The video dataset config (default:
            :func:`bank_dataset_cfg` of the teacher config).
        ann_file (str, optional): With ``img_dir``: the videos (a
            YouTube-VIS JSON and its frame folder) instead of the teacher
            config's training set (:func:`bank_dataset_cfg`).
        img_dir (str, optional): The frame folder of ``ann_file``.
        device (str | torch.device): Where the teacher runs.
        chunk_size (int, optional): Frames per online pass (default: the
            teacher's ``test_cfg.chunk_size``).
        assigner (dict, optional): The QFA assigner; default
            ``QFAAssigner()`` (the distiller's default).
        log (callable, optional): Progress lines (None: silent).

    Returns:
        :class:`KnowledgeBank`: The bank (also written to ``out``).
    """
    init_default_scope('mmdet')
    cfg = teacher_config
    config_path = None
    if isinstance(teacher_config, str):
        config_path = teacher_config
        cfg = Config.fromfile(teacher_config)
    if data_root is not None:
        from ..utils import set_data_root
        set_data_root(cfg, data_root)
    dataset_cfg = dataset or bank_dataset_cfg(cfg, ann_file, img_dir)
    teacher = build_frozen_teacher(cfg, teacher_checkpoint).to(device)
    if chunk_size is not None:
        teacher.test_cfg['chunk_size'] = int(chunk_size)
    qfa = TASK_UTILS.build(assigner or dict(type='QFAAssigner'))
    ds = DATASETS.build(dataset_cfg)
    t0 = time.time()
    entries: List[dict] = []
    for idx in range(len(ds)):
        data = teacher.data_preprocessor(pseudo_collate([ds[idx]]), False)
        data['inputs'] = data['inputs'].to(device)
        entries.extend(video_bank_entries(teacher, data, qfa))
        if log is not None and (idx + 1) % 10 == 0:
            log(f'knowledge bank: {idx + 1}/{len(ds)} videos, '
                f'{len(entries)} instances, {time.time() - t0:.0f} s')
    if not entries:
        raise ValueError('knowledge bank: the training set has no instance')
    ann_file = ds.ann_file
    # a teacher of another family says what its embeddings are
    feature = getattr(teacher, 'knowledge_feature', None)
    if feature is None:
        aggregator = teacher.aggregator
        feature = ('query_readout'
                   if getattr(aggregator, 'query_readout', False) else
                   type(aggregator).__name__ + ' decoder output')
        feature += ' through the frozen embedding head'

    meta = dict(
        teacher_config=config_path,
        teacher_config_sha256=model_cfg_sha256(cfg.model),
        teacher_config_text=cfg.model.pretty_text if hasattr(
            cfg.model, 'pretty_text') else str(cfg.model),
        teacher_checkpoint=teacher_checkpoint,
        teacher_checkpoint_sha256=file_sha256(teacher_checkpoint),
        ann_file=ann_file,
        ann_file_sha256=file_sha256(ann_file),
        num_videos=len(ds),
        feature=feature,
        assigner=repr(qfa),
        qfa='per instance: argmin over the teacher queries of the eq.-2 '
        'cost summed over the frames the instance is in',
        created=time.strftime('%Y-%m-%d %H:%M:%S'))
    bank = KnowledgeBank(
        embeds=torch.stack([e['embed'] for e in entries]),
        video_ids=torch.tensor([e['video_id'] for e in entries]),
        instance_ids=torch.tensor([e['instance_id'] for e in entries]),
        labels=torch.tensor([e['label'] for e in entries]),
        num_frames=torch.tensor([e['num_frames'] for e in entries]),
        costs=torch.tensor([e['cost'] for e in entries]),
        agreement=torch.tensor([e['agreement'] for e in entries]),
        meta=meta)
    if out is not None:
        bank.save(out)
        bank.meta['loaded_from'] = out
    if log is not None:
        log(f'knowledge bank: {len(bank)} instances of {len(ds)} videos in '
            f'{time.time() - t0:.0f} s, mean QFA agreement '
            f'{float(bank.agreement.mean()):.3f}' +
            (f' -> {out}' if out else ''))
    return bank
