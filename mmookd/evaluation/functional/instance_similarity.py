# Copyright (c) mmookd contributors. All rights reserved.
"""The paper's instance feature similarity analysis (OOKD Sec. 4.3,
"Instance Feature Similarity", Fig. 6) and the quality of the knowledge.

Fig. 6: the cosine similarity between two embeddings of the *same*
instance in different frames; after OOKD it is higher, which is why the
online tracker (nearest embedding in the memory) matches better. Here the
embedding of an instance in a frame is the one of the query QFA assigns to
it (eqs. 2-3, the student side, as the distiller does); pairs are drawn
from all the frames of each instance.

Knowledge quality: how often the nearest knowledge-bank entry (cosine) of
a student embedding is the entry of its own instance, among all entries
and among the entries of its video.
"""
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import get_box_tensor
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = [
    'instance_embeddings', 'same_instance_similarities', 'bank_retrieval'
]

Key = Tuple[int, int]


@torch.no_grad()
def instance_embeddings(
        model: torch.nn.Module,
        dataset,
        max_videos: Optional[int] = None,
        chunk_size: int = 8,
        assigner: Optional[dict] = None) -> Dict[Key, List[Tensor]]:
    """Per ``(video id, instance id)``, the model's embedding of the
    instance in every frame it is in (the QFA-matched query).

    Args:
        model: An online model with ``forward_frames`` (IDOL / OOKD).
        dataset: A video dataset in test mode (whole videos, annotations
            loaded).
        max_videos (int, optional): The first videos only.
        chunk_size (int): Frames per forward pass.
        assigner (dict, optional): QFA (default ``QFAAssigner()``).

    Returns:
        dict: ``(video id, instance id) -> [embedding (C,) per frame]``.
    """
    qfa = TASK_UTILS.build(assigner or dict(type='QFAAssigner'))
    model.eval()
    out: Dict[Key, List[Tensor]] = defaultdict(list)
    num = len(dataset) if max_videos is None else min(max_videos, len(dataset))
    for idx in range(num):
        data = model.data_preprocessor(pseudo_collate([dataset[idx]]), False)
        video = data['data_samples'][0]
        frames = [video[i] for i in range(len(video))]
        inputs = data['inputs'][0]
        for start in range(0, len(frames), chunk_size):
            chunk = frames[start:start + chunk_size]
            res = model.forward_frames(inputs[start:start + chunk_size], chunk)
            for j, frame in enumerate(chunk):
                gt = frame.gt_instances
                if len(gt) == 0:
                    continue
                pred = InstanceData(
                    scores=res['cls_scores'][-1, j],
                    bboxes=model.head.boxes_to_xyxy(
                        res['bbox_preds'][-1, j], frame.metainfo['img_shape']))
                inds = qfa.assign(
                    pred,
                    InstanceData(
                        labels=gt.labels,
                        bboxes=get_box_tensor(gt.bboxes))).matched_pred_inds
                vid = int(frame.metainfo['video_id'])
                for inst, q in zip(gt.instances_ids.tolist(), inds.tolist()):
                    if q >= 0:
                        out[(vid, inst)].append(res['embeds'][j, q].cpu())
    return dict(out)


def same_instance_similarities(embeds: Dict[Key, List[Tensor]],
                               pairs_per_instance: Optional[int] = None,
                               seed: int = 0) -> Tensor:
    """Cosine similarity of pairs of embeddings of the same instance in
    different frames.

    Args:
        embeds (dict): :func:`instance_embeddings`.
        pairs_per_instance (int, optional): Draw at most this many pairs
            per instance (seeded); None: all pairs.
        seed (int): Seed of the draw.

    Returns:
        Tensor: (P,) similarities.
    """
    rng = random.Random(seed)
    sims = []
    for key in sorted(embeds):
        vecs = embeds[key]
        if len(vecs) < 2:
            continue
        pairs = [(a, b) for a in range(len(vecs))
                 for b in range(a + 1, len(vecs))]
        if pairs_per_instance is not None and len(pairs) > pairs_per_instance:
            pairs = rng.sample(pairs, pairs_per_instance)
        x = torch.stack([vecs[a] for a, _ in pairs])
        y = torch.stack([vecs[b] for _, b in pairs])
        sims.append(F.cosine_similarity(x, y, dim=1))
    return torch.cat(sims) if sims else torch.zeros(0)


def bank_retrieval(embeds: Dict[Key, List[Tensor]], bank_keys: Sequence[Key],
                   bank_embeds: Tensor) -> Dict[str, float]:
    """How often the nearest bank entry of an embedding is its instance's.

    Args:
        embeds (dict): :func:`instance_embeddings` (keys in the bank).
        bank_keys (Sequence[tuple]): ``(video id, instance id)`` per entry.
        bank_embeds (Tensor): (E, C) the bank's features.

    Returns:
        dict: ``top1_all`` (among all entries), ``top1_video`` (among the
        entries of the same video), ``num`` (embeddings judged; those of
        instances without an entry are left out) and ``mean_cos_own``
        (mean cosine to the own entry).
    """
    keys = [(int(v), int(i)) for v, i in bank_keys]
    row = {k: r for r, k in enumerate(keys)}
    videos = torch.tensor([v for v, _ in keys])
    bank = F.normalize(bank_embeds.float(), dim=1)
    hits_all = hits_video = num = 0
    own = 0.0
    for key, vecs in embeds.items():
        if key not in row or not vecs:
            continue
        sims = F.normalize(torch.stack(vecs).float(), dim=1) @ bank.t()
        target = row[key]
        hits_all += int((sims.argmax(1) == target).sum())
        same = videos == key[0]
        masked = sims.masked_fill(~same[None], float('-inf'))
        hits_video += int((masked.argmax(1) == target).sum())
        own += float(sims[:, target].sum())
        num += len(vecs)
    if num == 0:
        return dict(
            top1_all=float('nan'),
            top1_video=float('nan'),
            num=0,
            mean_cos_own=float('nan'))
    return dict(
        top1_all=hits_all / num,
        top1_video=hits_video / num,
        num=num,
        mean_cos_own=own / num)
