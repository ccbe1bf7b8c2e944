# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD: offline-to-online knowledge distillation (Kim et al., WACV 2024).

The whole method in one place (paper Fig. 3):

1. the frozen **teacher** sees a clip and gives, per offline query, an
   instance embedding ``f_off`` and per-frame class / box predictions
   (Sec. 3.2);
2. the trained **student** (IDOL, Sec. 3.1) sees the key and reference
   frames and gives per-query embeddings ``f`` and predictions;
3. **QFA** matches, for every ground-truth instance ``m`` of a frame, the
   student query ``sigma_m`` and the teacher query ``sigma_off_m`` of lowest
   cost (eqs. 2-3); the other queries are filtered out;
4. **L_KD** = mean over the matched pairs of ``1 - cos(f_off, f)`` (eq. 4)
   and ``L_total = L_IDOL + lambda_4 L_KD`` (eq. 5);
5. optional **extra terms** (``extra_distill``, issue #6): the companion
   losses of papers A / B on the same GT-anchored pairs, the teacher's
   frozen online model and the recorded deformable attention
   (:mod:`mmookd.models.vis.distill_terms`).

The distiller *is* the student: :class:`OOKD` subclasses :class:`IDOL`, so
its parameters, checkpoints and test-time behaviour are exactly IDOL's and a
saved OOKD checkpoint loads into the plain IDOL config, and testing never
builds the teacher. The teacher is built on the first training step and kept
outside the module tree: it is not a submodule, so it is never in the
optimizer, never wrapped by DDP, never saved into the student's
checkpoints, and ``train()`` cannot switch it out of eval mode.
"""
import ast
import os.path as osp
from typing import Any, Dict, Optional, Tuple, Union

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample, TrackSampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, OptConfigType
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_checkpoint
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .bank_distill import BankDistillMixin
from .distill_terms import DistillBatch, DistillFrame, DistillTerms
from .idol import IDOL, FrameOutputs


def parse_teacher_cfg_options(options: Any) -> Optional[dict]:
    """``model.teacher.cfg_options`` as a dict, or a clear error.

    On the command line, ``--cfg-options
    "model.teacher.cfg_options={'online_checkpoint':None}"`` reaches the
    config as the *text* of a dict (mmengine's ``DictAction`` parses lists,
    not dicts, and splits text with a comma into a list of strings), which
    used to fail deep inside the lazily built teacher. Such text is read
    as a Python literal; anything that is not a dict is refused here, when
    the student is built.
    """
    if options is None or isinstance(options, dict):
        return options
    text = options
    if isinstance(options, (list, tuple)) and options and all(
            isinstance(o, str) for o in options):
        text = ','.join(options)
    hint = ('give a dict, or on the command line one override per key: '
            '--cfg-options model.teacher.cfg_options.KEY=VALUE')
    if isinstance(text, str):
        try:
            parsed = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f'model.teacher.cfg_options {options!r} is not '
                             f'the text of a dict; {hint}') from None
        if isinstance(parsed, dict):
            return parsed
    raise TypeError('model.teacher.cfg_options must be a dict of teacher '
                    f'config overrides, got {type(options).__name__} '
                    f'{options!r}; {hint}')


def _describe_teacher_config(config: Any) -> str:
    if isinstance(config, str):
        return config
    if isinstance(config, dict) and 'type' in config:
        return f"the model dict of type {config['type']!r}"
    return f'a {type(config).__name__}'


def build_frozen_teacher(config: Union[str, dict, Config],
                         checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a teacher model from its own config and checkpoint, frozen.

    Args:
        config (str | dict | Config): A config file whose ``model`` is the
            teacher, or the model config itself.
        checkpoint (str, optional): The teacher's trained weights (all of
            them, e.g. frozen IDOL + aggregator). ``None``: the teacher's own
            ``online_checkpoint`` only (a parameter-free aggregator such as
            token average), else random weights (tests; a warning).
        cfg_options (dict, optional): Overrides merged into the teacher's
            model config (e.g. smaller test settings).

    Returns:
        nn.Module: The teacher in eval mode with ``requires_grad=False``.
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'OOKD teacher config not found: {config}')
        model_cfg = Config.fromfile(config).model
    elif isinstance(config, Config) and 'model' in config:
        model_cfg = config.model
    else:
        model_cfg = Config(dict(config))
    model_cfg = Config(dict(model_cfg))
    cfg_options = parse_teacher_cfg_options(cfg_options)
    if cfg_options:
        model_cfg.merge_from_dict(cfg_options)
    if checkpoint is not None and 'online_checkpoint' in model_cfg:
        # The teacher checkpoint holds the frozen online model too; do not
        # also require the checkpoint the teacher was trained from.
        model_cfg.online_checkpoint = None
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'OOKD teacher checkpoint not found: {checkpoint} (train the '
            'teacher first, or set model.teacher.checkpoint)')
    teacher = MODELS.build(model_cfg.to_dict())
    # Parameters a checkpoint does not cover must not stay uninitialised
    # memory (e.g. DETR's level_embed); loaded weights overwrite the rest.
    if hasattr(teacher, 'init_weights'):
        teacher.init_weights()
    if checkpoint is not None:
        load_checkpoint(
            teacher,
            checkpoint,
            map_location='cpu',
            strict=True,
            logger='current')
    elif not model_cfg.get('online_checkpoint'):
        print_log(
            'OOKD teacher built without a checkpoint: its knowledge is '
            'random (fine for tests, not for training)',
            logger='current',
            level=30)
    if not callable(getattr(teacher, 'forward_clip', None)):
        raise TypeError(
            f'{type(teacher).__name__} cannot be an OOKD teacher: it needs '
            '`forward_clip(imgs, frame_samples)` returning per-instance '
            '`embeds` and per-frame `cls_scores` / `bbox_preds`')
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


@MODELS.register_module()
class OOKD(BankDistillMixin, IDOL):
    """IDOL student distilled from a frozen offline teacher (paper Sec. 3).

    Training samples hold ``[key, reference, context...]`` frames
    (:class:`~mmookd.datasets.transforms.KeyRefClipSample`): the student
    trains on the key / reference pair exactly as IDOL does, the teacher
    sees all frames of the sample in time order.

    Any registered model can be the teacher if it has ``forward_clip(imgs,
    frame_samples) -> dict`` taking one clip ``(T, C, H, W)`` (normalised
    like the student's inputs) and returning ``embeds`` ``(Nq, C)`` (one
    instance embedding per query for the clip), ``cls_scores``
    ``(T, Nq, K)`` logits and ``bbox_preds`` ``(T, Nq, 4)`` normalised
    cxcywh boxes per frame.

    Args:
        teacher (dict, optional): ``config`` (teacher config file or model
            dict),
            ``checkpoint`` (path, ``None`` only in tests) and optional
            ``cfg_options``.
        assigner (dict): The query filtering and association module (eqs.
            2-3), applied to the student and the teacher alike.
        loss_kd (dict, optional): The KD loss (eq. 4); its ``loss_weight``
            is lambda_4 (1 in the paper). ``None`` trains the student
            without distillation (the paper's baseline and "Minor-Paste
            only" rows, Table 5), with the same data as the distilled one;
            the teacher is then not needed.
        association (str): ``'qfa'`` (the paper's method) or ``'index'``
            (the paper's "KD without QFA" ablation, Table 4: student query
            ``i`` is distilled from teacher query ``i``, no filtering).
        kd_frames (str): Which student frames are distilled: ``'both'``
            (key and reference; default: both are student outputs of the
            same clip) or ``'key'``. The paper does not say.
        knowledge_bank (str | dict, optional): Distil from a knowledge bank
            file (one offline feature per training instance, the teacher
            run once over every whole video; ``tools/analysis/
            build_knowledge_bank.py``) instead of running the teacher on
            each sample: its path, or ``dict(path=..., teacher_config=...,
            teacher_checkpoint=..., ann_file=...)`` to refuse a bank from
            another teacher / dataset or a stale one. QFA then runs on the
            student side only (:mod:`.bank_distill`); ``teacher`` is not
            needed unless an extra term needs it. Defaults to None (the
            teacher on the fly).
        extra_distill (list[dict], optional): Extra distillation terms
            added to L_total, each a registered loss config with its
            ``inputs`` (what it consumes) and ``name``; see
            :mod:`mmookd.models.vis.distill_terms` and
            ``docs/companion_losses.md``. Defaults to None (OOKD alone).
        **kwargs: :class:`IDOL`'s arguments (the student).
    """

    def __init__(self,
                 *args,
                 teacher: OptConfigType = None,
                 assigner: ConfigType = dict(type='QFAAssigner'),
                 loss_kd: OptConfigType = dict(
                     type='CosineKDLoss', loss_weight=1.0),
                 association: str = 'qfa',
                 kd_frames: str = 'both',
                 extra_distill: Optional[list] = None,
                 knowledge_bank: Union[None, str, dict] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_knowledge_bank(knowledge_bank)
        if association not in ('qfa', 'index'):
            raise ValueError(
                f"association must be 'qfa' or 'index', got {association!r}")
        if kd_frames not in ('both', 'key'):
            raise ValueError(
                f"kd_frames must be 'both' or 'key', got {kd_frames!r}")
        self.extra_distill = DistillTerms(extra_distill)
        if self.uses_bank and (association != 'qfa'
                               or self.extra_distill.needs_offline):
            raise ValueError(
                'knowledge_bank holds one feature per ground-truth instance: '
                "it needs association='qfa' and no extra term that reads "
                'the offline teacher outputs (use the teacher on the fly)')
        if (loss_kd is not None and not self.uses_bank) or \
                self.extra_distill.needs_teacher:
            if teacher is None or 'config' not in teacher:
                raise KeyError(
                    'model.teacher needs a `config` (the teacher config '
                    'file or model dict) and a `checkpoint` (or set '
                    'loss_kd=None to train without distillation)')
        if teacher is not None:
            teacher = dict(teacher)
            teacher['cfg_options'] = parse_teacher_cfg_options(
                teacher.get('cfg_options'))
        self.teacher_cfg = teacher
        # Built on the first training step, so testing the student (which
        # is IDOL alone) never needs the teacher's files; not a submodule
        # (see the module docstring).
        object.__setattr__(self, '_teacher', None)
        self.qfa = TASK_UTILS.build(assigner)
        self.loss_kd = MODELS.build(loss_kd) if loss_kd is not None else None
        self.association = association
        self.kd_frames = kd_frames

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a submodule of the student), built from
        ``teacher_cfg`` on first use.

        A missing file is reported as it is (the message names it); any
        other error becomes a ``RuntimeError`` naming the teacher config,
        chained to the original. An ``AttributeError`` escaping a property
        would otherwise be swallowed by ``nn.Module.__getattr__`` and
        reported as "'OOKD' object has no attribute 'teacher'".
        """
        if self._teacher is None:
            config = self.teacher_cfg['config']
            try:
                teacher = build_frozen_teacher(
                    config, self.teacher_cfg.get('checkpoint'),
                    self.teacher_cfg.get('cfg_options'))
            except OSError:
                raise
            except Exception as err:
                raise RuntimeError('cannot build the OOKD teacher from '
                                   f'{_describe_teacher_config(config)}: '
                                   f'{type(err).__name__}: {err}') from err
            object.__setattr__(self, '_teacher', teacher)
        return self._teacher

    @property
    def teacher_online(self) -> nn.Module:
        """The teacher's frozen per-frame model: ``teacher.online`` (the
        trained IDOL of an :class:`OfflineTeacher`), or the teacher itself
        if it has ``forward_frames``. Source of the ``teacher='online'``
        extra terms (same architecture as the student)."""
        online = getattr(self.teacher, 'online', None)
        if online is None and callable(
                getattr(self.teacher, 'forward_frames', None)):
            online = self.teacher
        if online is None:
            raise TypeError(
                f'{type(self.teacher).__name__} has no frozen online model '
                "(`online`) for the extra terms with teacher='online'")
        return online

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """L_total = L_IDOL + lambda_4 L_KD (eq. 5) for a batch of clips.

        Args:
            inputs (Tensor): (N, T, C, H, W), T >= 2, frames ordered
                ``[key, reference, context...]``.
            data_samples (list[:obj:`TrackDataSample`]): With per-frame
                ``gt_instances`` and key / reference frame indices.

        Returns:
            dict[str, Tensor]: IDOL's losses and ``loss_kd``.
        """
        assert inputs.dim() == 5 and inputs.size(1) >= 2, \
            'OOKD trains on (N, T >= 2, C, H, W) samples'
        key_imgs, ref_imgs, key_samples, ref_samples = self.split_key_ref(
            inputs, data_samples)
        imgs = torch.cat([key_imgs, ref_imgs])
        samples = key_samples + ref_samples
        # attention-map terms record the student's deformable attention;
        # the hooks exist only inside this block
        with self.extra_distill.record(self) as student_attention:
            outputs = self.forward_frames(imgs, samples)
        key_out, ref_out = self.split_outputs(outputs, len(key_samples))
        losses = self.loss_by_outputs(key_out, ref_out, key_samples,
                                      ref_samples)
        knowledge = None
        if self.loss_kd is not None and self.uses_bank:
            losses['loss_kd'] = self.loss_distill_bank(data_samples, outputs)
        elif self.loss_kd is not None or self.extra_distill.needs_offline:
            knowledge = [
                self.teacher_knowledge(clip, sample)
                for clip, sample in zip(inputs, data_samples)
            ]
        if self.loss_kd is not None and not self.uses_bank:
            losses['loss_kd'] = self.loss_distill(inputs, data_samples,
                                                  outputs, knowledge)
        if len(self.extra_distill):
            losses.update(
                self.extra_distill(
                    self.distill_batch(imgs, samples, data_samples, outputs,
                                       knowledge, student_attention)))
        return losses

    def loss_distill(self,
                     inputs: Tensor,
                     data_samples: TrackSampleList,
                     student_out: FrameOutputs,
                     knowledge: Optional[list] = None) -> Tensor:
        """L_KD (eq. 4) over the distilled frames of the batch.

        Args:
            inputs (Tensor): (N, T, C, H, W) samples.
            data_samples (list[:obj:`TrackDataSample`]): The samples.
            student_out (dict): :meth:`forward_frames` outputs of the key
                frames followed by the reference frames.
            knowledge (list[tuple], optional): :meth:`teacher_knowledge` of
                every sample, if already computed.

        Returns:
            Tensor: The weighted KD loss, averaged over all matched pairs.
        """
        num_videos = inputs.size(0)
        frame_sets = [('key', 0)]
        if self.kd_frames == 'both':
            frame_sets.append(('ref', num_videos))
        student_feats, teacher_feats = [], []
        for vid, sample in enumerate(data_samples):
            knowledge_v, order = (
                knowledge[vid] if knowledge is not None else
                self.teacher_knowledge(inputs[vid], sample))
            for kind, offset in frame_sets:
                frame_idx = (
                    sample.key_frames_inds[0]
                    if kind == 'key' else sample.ref_frames_inds[0])
                s_idx, t_idx = self.associate(student_out, offset + vid,
                                              knowledge_v,
                                              order.index(frame_idx),
                                              sample[frame_idx])
                student_feats.append(student_out['embeds'][offset + vid,
                                                           s_idx])
                teacher_feats.append(knowledge_v['embeds'][t_idx])
        student_feats = torch.cat(student_feats)
        teacher_feats = torch.cat(teacher_feats).to(student_feats.dtype)
        return self.loss_kd(student_feats, teacher_feats)

    @torch.no_grad()
    def teacher_knowledge(self, clip: Tensor,
                          sample) -> Tuple[Dict[str, Tensor], list]:
        """Run the frozen teacher on one sample's frames in time order.

        Returns:
            tuple: the teacher's ``forward_clip`` output and ``order``, the
            sample's frame indices in the teacher's (time) order.
        """
        teacher = self._teacher_to(clip.device)
        frame_ids = [
            sample[i].metainfo.get('frame_id', i) for i in range(len(sample))
        ]
        order = sorted(range(len(sample)), key=lambda i: (frame_ids[i], i))
        knowledge = teacher.forward_clip(clip[order],
                                         [sample[i] for i in order])
        return knowledge, order

    def _teacher_to(self, device: torch.device) -> nn.Module:
        teacher = self.teacher
        param = next(teacher.parameters(), None)
        if param is not None and param.device != device:
            teacher.to(device)
        teacher.eval()
        return teacher

    @torch.no_grad()
    def online_teacher_frames(self, imgs: Tensor,
                              samples: list) -> Tuple[FrameOutputs, dict]:
        """The teacher's frozen online model on the student's frames, with
        its deformable attention recorded for the attention terms.

        Returns:
            tuple: ``forward_frames`` outputs and the recorders (or None).
        """
        self._teacher_to(imgs.device)
        online = self.teacher_online.eval()
        with self.extra_distill.record(online, detach=True) as attention:
            outputs = online.forward_frames(imgs, samples)
        return outputs, attention

    def distill_batch(self, imgs: Tensor, samples: list,
                      data_samples: TrackSampleList, outputs: FrameOutputs,
                      knowledge: Optional[list],
                      student_attention: Optional[dict]) -> DistillBatch:
        """Inputs of the extra terms: for every student frame, the query
        QFA matches to each GT instance for the student, the offline
        teacher and the teacher's online model (GT-anchored pairs,
        eqs. 2-3), plus the teacher outputs and recorded attention."""
        online, teacher_attention = None, None
        if self.extra_distill.needs_online:
            online, teacher_attention = self.online_teacher_frames(
                imgs, samples)
        num_videos = len(data_samples)
        frames = []
        for i, frame_sample in enumerate(samples):
            vid, kind = i % num_videos, 'key' if i < num_videos else 'ref'
            gt = frame_sample.gt_instances
            frame = DistillFrame(
                index=i,
                video=vid,
                kind=kind,
                teacher_frame=-1,
                sample=frame_sample,
                instance_ids=gt.instances_ids.to(imgs.device),
                gt_boxes=get_box_tensor(gt.bboxes).to(imgs.device),
                student=self.match_gt(*self._last_layer(outputs, i),
                                      frame_sample))
            if knowledge is not None:
                knowledge_v, order = knowledge[vid]
                sample = data_samples[vid]
                inds = sample.key_frames_inds if kind == 'key' else \
                    sample.ref_frames_inds
                frame.teacher_frame = order.index(inds[0])
                frame.offline = self.match_gt(
                    knowledge_v['cls_scores'][frame.teacher_frame],
                    knowledge_v['bbox_preds'][frame.teacher_frame],
                    frame_sample)
            if online is not None:
                frame.online = self.match_gt(*self._last_layer(online, i),
                                             frame_sample)
            frames.append(frame)
        return DistillBatch(
            student_model=self,
            imgs=imgs,
            student=outputs,
            frames=frames,
            distilled=self._distilled_kinds(),
            knowledge=[k for k, _ in knowledge] if knowledge else None,
            online_model=self.teacher_online if online is not None else None,
            online=online,
            student_attention=student_attention,
            teacher_attention=teacher_attention)

    def _distilled_kinds(self) -> Tuple[str, ...]:
        return ('key', 'ref') if self.kd_frames == 'both' else ('key', )

    @staticmethod
    def _last_layer(outputs: FrameOutputs, idx: int) -> Tuple[Tensor, Tensor]:
        """Last-layer class logits and boxes of frame ``idx``."""
        return outputs['cls_scores'][-1, idx], outputs['bbox_preds'][-1, idx]

    def match_gt(self, cls_scores: Tensor, bbox_preds: Tensor,
                 frame_sample: DetDataSample) -> Tensor:
        """QFA (eqs. 2-3) of one model's predictions in one frame.

        Args:
            cls_scores (Tensor): (Q, K) class logits.
            bbox_preds (Tensor): (Q, 4) normalised cxcywh boxes.
            frame_sample (:obj:`DetDataSample`): With ``gt_instances``.

        Returns:
            Tensor: (M,) the query matched to each GT instance, -1 where
            filtered out.
        """
        device = cls_scores.device
        gt = frame_sample.gt_instances
        gt_instances = InstanceData(
            labels=gt.labels.to(device),
            bboxes=get_box_tensor(gt.bboxes).to(device))
        img_shape = frame_sample.metainfo['img_shape']
        pred = InstanceData(
            scores=cls_scores,
            bboxes=self.head.boxes_to_xyxy(bbox_preds.to(device), img_shape))
        return self.qfa.assign(pred, gt_instances).matched_pred_inds

    def associate(self, student_out: FrameOutputs, student_idx: int,
                  knowledge: Dict[str, Tensor], teacher_frame: int,
                  frame_sample: DetDataSample) -> Tuple[Tensor, Tensor]:
        """Student and teacher query indices of the distilled pairs.

        With QFA, each ground-truth instance of the frame picks its
        lowest-cost student query and its lowest-cost teacher query (eqs.
        2-3); instances either side leaves unmatched are skipped.

        Returns:
            tuple[Tensor]: (P, ) student and (P, ) teacher query indices.
        """
        device = student_out['embeds'].device
        if self.association == 'index':
            num = min(student_out['embeds'].size(1),
                      knowledge['embeds'].size(0))
            inds = torch.arange(num, device=device)
            return inds, inds
        s_inds = self.match_gt(student_out['cls_scores'][-1, student_idx],
                               student_out['bbox_preds'][-1, student_idx],
                               frame_sample)
        t_inds = self.match_gt(
            knowledge['cls_scores'][teacher_frame].to(device),
            knowledge['bbox_preds'][teacher_frame], frame_sample)
        keep = (s_inds >= 0) & (t_inds >= 0)
        return s_inds[keep], t_inds[keep]
