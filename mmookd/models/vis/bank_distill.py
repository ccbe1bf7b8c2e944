# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's distillation from the offline knowledge bank (paper Sec. 3.2-3.3
as written: the offline feature of an instance aggregates "the whole set of
video frames").

The bank (:class:`~mmookd.models.utils.KnowledgeBank`, built once by
:func:`mmookd.apis.build_knowledge_bank`) holds one offline feature per
ground-truth ``(video id, instance id)``, chosen on the teacher side by
QFA. Here QFA runs on the student side only (eqs. 2-3, per frame): the
student query ``sigma_m`` of ground truth ``m`` is distilled from ``m``'s
bank entry (eq. 4). No teacher is in memory. An instance pasted by
Minor-Paste is distilled from its *source* instance's entry: the frame's
``instance_sources`` meta (written by :class:`MinorPaste`, packed with
``PackTrackInputs(meta_keys=('instance_sources', ))``) maps its id to the
source ``(video id, instance id)``.
"""
from typing import Any, List, Optional, Tuple, Union

import torch
from mmdet.structures import DetDataSample, TrackSampleList
from torch import Tensor

from ..utils.knowledge_bank import KnowledgeBank

__all__ = ['BankDistillMixin', 'bank_keys']


def bank_keys(frame_sample: DetDataSample) -> List[Tuple[int, int]]:
    """``(video id, instance id)`` bank key of every ground truth of a
    frame, pasted instances mapped to their source."""
    meta = frame_sample.metainfo
    if 'video_id' not in meta:
        raise KeyError('distilling from a knowledge bank needs the frame '
                       'meta video_id (PackTrackInputs packs it)')
    video_id = int(meta['video_id'])
    sources = meta.get('instance_sources') or {}
    keys = []
    for inst in frame_sample.gt_instances.instances_ids.tolist():
        src = sources.get(int(inst))
        keys.append((int(src[0]),
                     int(src[1])) if src is not None else (video_id,
                                                           int(inst)))
    return keys


class BankDistillMixin:
    """Knowledge-bank side of :class:`OOKD` (``knowledge_bank=...``)."""

    def _init_knowledge_bank(self, knowledge_bank: Union[None, str,
                                                         dict]) -> None:
        """Keep the bank's settings; it is read on first use."""
        if isinstance(knowledge_bank, str):
            knowledge_bank = dict(path=knowledge_bank)
        if knowledge_bank is not None:
            knowledge_bank = dict(knowledge_bank)
            unknown = set(knowledge_bank) - {
                'path', 'teacher_config', 'teacher_checkpoint', 'ann_file'
            }
            if 'path' not in knowledge_bank or unknown:
                raise KeyError(
                    'knowledge_bank takes a path, or a dict with `path` and '
                    'optionally `teacher_config`, `teacher_checkpoint`, '
                    f'`ann_file` to check it against (got {knowledge_bank})')
        self.knowledge_bank_cfg = knowledge_bank
        object.__setattr__(self, '_knowledge_bank', None)

    @property
    def uses_bank(self) -> bool:
        return self.knowledge_bank_cfg is not None

    @property
    def knowledge_bank(self) -> Optional[KnowledgeBank]:
        """The bank (loaded and checked on first use), or None."""
        if self.knowledge_bank_cfg is None:
            return None
        if self._knowledge_bank is None:
            cfg = self.knowledge_bank_cfg
            bank = KnowledgeBank.load(cfg['path'])
            bank.check(
                teacher_config=cfg.get('teacher_config'),
                teacher_checkpoint=cfg.get('teacher_checkpoint'),
                ann_file=cfg.get('ann_file'))
            object.__setattr__(self, '_knowledge_bank', bank)
        return self._knowledge_bank

    def loss_distill_bank(self, data_samples: TrackSampleList,
                          student_out: Any) -> Tensor:
        """L_KD (eq. 4) of the distilled frames against the bank.

        Args:
            data_samples (list[:obj:`TrackDataSample`]): The samples.
            student_out (dict): ``forward_frames`` outputs of the key
                frames followed by the reference frames.

        Returns:
            Tensor: The weighted KD loss over all matched instances.
        """
        bank = self.knowledge_bank
        num_videos = len(data_samples)
        offsets = [0] + ([num_videos] if self.kd_frames == 'both' else [])
        student_feats, keys = [], []
        for vid, sample in enumerate(data_samples):
            for offset in offsets:
                inds = (
                    sample.key_frames_inds
                    if offset == 0 else sample.ref_frames_inds)
                frame = sample[inds[0]]
                idx = offset + vid
                s_inds = self.match_gt(student_out['cls_scores'][-1, idx],
                                       student_out['bbox_preds'][-1,
                                                                 idx], frame)
                frame_keys = bank_keys(frame)
                self._check_labels(bank, frame_keys,
                                   frame.gt_instances.labels.tolist())
                keep = s_inds >= 0
                student_feats.append(student_out['embeds'][idx, s_inds[keep]])
                keys.extend(k for k, kept in zip(frame_keys, keep.tolist())
                            if kept)
        student = torch.cat(student_feats)
        teacher = bank.features(keys).to(student)
        return self.loss_kd(student, teacher)

    @staticmethod
    def _check_labels(bank: KnowledgeBank, keys: List[Tuple[int, int]],
                      labels: List[int]) -> None:
        """A bank entry of another class than the frame's instance means a
        wrong key (e.g. a pasted instance whose source was not packed)."""
        rows = bank.rows(keys)
        for key, row, label in zip(keys, rows.tolist(), labels):
            stored = int(bank.labels[row])
            if stored >= 0 and stored != int(label):
                raise ValueError(
                    f'knowledge bank entry (video {key[0]}, instance '
                    f'{key[1]}) has label {stored} but the frame\'s instance '
                    f'has label {label}: a Minor-Paste instance without its '
                    "source? Pack the sources with PackTrackInputs(meta_keys="
                    "('instance_sources', ))")
