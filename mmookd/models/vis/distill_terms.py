# Copyright (c) mmookd contributors. All rights reserved.
"""Extra distillation terms of the OOKD distiller (issue #6).

``OOKD(extra_distill=[...])`` adds the companion losses of paper A (ETC:
temporal loss, pixel-wise, pair-wise and pair-wise-frames distillation) and
paper B (CKA attention, intra-/inter-object relations) to OOKD's L_total
(docs/companion_losses.md, "The OOKD distiller"). Each entry is a registered
loss config plus what it consumes::

    extra_distill=[
        dict(type='PixelKLDistillLoss', mode='sigmoid',
             inputs='query_cls'),                      # offline teacher
        dict(type='AttentionCKALoss',
             inputs=dict(kind='decoder_attention', layers=(-1, ),
                         grid_size=(16, 16))),         # online teacher
        dict(type='MotionGuidedTemporalLoss', activation='sigmoid',
             inputs=dict(kind='track_masks',
                         flow=dict(type='RAFTFlowProvider',
                                   checkpoint='raft_small.pth'))),
    ]

``inputs`` (a name or ``dict(kind=name, **options)``, default per loss in
:data:`DEFAULT_INPUTS`) is an *input kind* of :data:`INPUT_KINDS`: a
function that takes the batch's :class:`DistillBatch` and calls the loss.
``name`` (default ``loss_<kind>``) is the key in the loss dict.

Where the tensors come from (``inputs.teacher``):

* ``'offline'``: OOKD's offline teacher (``forward_clip``): per offline
  query the clip-level embedding ``embeds`` and class logits; pairs are
  OOKD's QFA pairs (eqs. 2-3), i.e. the student and teacher queries matched
  to the same GT instance.
* ``'online'``: the teacher's *frozen online model* (``teacher.online``,
  the trained IDOL inside :class:`~mmookd.models.vis.OfflineTeacher`; a
  teacher with its own ``forward_frames`` is used directly), run on the
  student's key / reference frames under ``no_grad``: per-frame class
  logits, embeddings, masks, mask features and, recorded by hooks, the
  decoder's deformable attention. Same architecture as the student, so
  per-frame maps compare one to one; QFA picks its query per GT like the
  student's (GT-anchored correspondence). Costs one extra
  frozen per-frame forward of the student's frames.
* ``None``: student-only terms (temporal losses).

Per-frame terms use OOKD's ``kd_frames``; cross-frame / temporal terms use
each sample's key -> reference pair (the flow is key -> reference).
"""
import copy
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from torch import Tensor, nn

from ..utils import (
    DECODER_CROSS_ATTN,
    DeformableAttentionRecorder,
    attention_cells_by_columns,
    rasterize_deformable_attention,
)

__all__ = [
    'DistillFrame', 'DistillBatch', 'DistillTerm', 'DistillTerms',
    'INPUT_KINDS', 'DEFAULT_INPUTS'
]

FrameOutputs = Dict[str, Any]


@dataclass
class DistillFrame:
    """One student frame and its GT-anchored query indices.

    Attributes:
        index (int): Row in the student's frame batch (key frames of all
            samples, then their reference frames).
        video (int): Sample index in the batch.
        kind (str): ``'key'`` or ``'ref'``.
        teacher_frame (int): Row of this frame in the offline teacher's
            knowledge (its time order), -1 without offline teacher.
        sample (:obj:`DetDataSample`): The frame's sample.
        instance_ids (Tensor): (M,) GT instance ids.
        gt_boxes (Tensor): (M, 4) GT xyxy boxes.
        student (Tensor): (M,) student query matched to each GT (QFA), -1
            when filtered out.
        offline (Tensor, optional): (M,) offline-teacher query per GT.
        online (Tensor, optional): (M,) teacher online-model query per GT.
    """
    index: int
    video: int
    kind: str
    teacher_frame: int
    sample: DetDataSample
    instance_ids: Tensor
    gt_boxes: Tensor
    student: Tensor
    offline: Optional[Tensor] = None
    online: Optional[Tensor] = None

    def pairs(self, source: Optional[str]) -> Tuple[Tensor, Tensor, Tensor]:
        """GT rows matched on both sides and their student / teacher
        queries (teacher = student for ``source=None``)."""
        teacher = self.student if source is None else getattr(self, source)
        keep = (self.student >= 0) & (teacher >= 0)
        return keep.nonzero().squeeze(1), self.student[keep], teacher[keep]


@dataclass
class DistillBatch:
    """What the extra terms consume for one training batch.

    Attributes:
        student_model (nn.Module): The student (OOKD / IDOL).
        imgs (Tensor): (F, C, H, W) the student's normalised frames.
        student (dict): The student's ``forward_frames`` outputs.
        frames (list[DistillFrame]): One per student frame.
        distilled (tuple[str]): Frame kinds of the per-frame terms.
        knowledge (list[dict], optional): Offline teacher per sample.
        online_model (nn.Module, optional): The teacher's online model.
        online (dict, optional): Its ``forward_frames`` outputs on ``imgs``.
        student_attention / teacher_attention (dict, optional): Recorders
            by module pattern.
    """
    student_model: nn.Module
    imgs: Tensor
    student: FrameOutputs
    frames: List[DistillFrame]
    distilled: Tuple[str, ...] = ('key', 'ref')
    knowledge: Optional[List[dict]] = None
    online_model: Optional[nn.Module] = None
    online: Optional[FrameOutputs] = None
    student_attention: Optional[Dict[str, Any]] = None
    teacher_attention: Optional[Dict[str, Any]] = None
    cache: Dict[Any, Any] = field(default_factory=dict)

    def per_frame(self) -> List[DistillFrame]:
        """The frames distilled by per-frame terms (``kd_frames``)."""
        return [f for f in self.frames if f.kind in self.distilled]

    def video_pairs(self) -> List[Tuple[DistillFrame, DistillFrame]]:
        """(key, reference) frames of every sample."""
        key = {f.video: f for f in self.frames if f.kind == 'key'}
        ref = {f.video: f for f in self.frames if f.kind == 'ref'}
        return [(key[v], ref[v]) for v in sorted(key) if v in ref]

    def zero(self) -> Tensor:
        """A zero connected to the student's graph (DDP-safe)."""
        return self.student['embeds'].float().sum() * 0

    def student_field(self, frame: DistillFrame, name: str,
                      queries: Tensor) -> Tensor:
        out = self.student[name]
        if name in ('cls_scores', 'bbox_preds', 'hidden_states'):
            return out[-1, frame.index, queries]
        return out[frame.index, queries]

    def teacher_field(self, frame: DistillFrame, source: str, name: str,
                      queries: Tensor) -> Tensor:
        if source == 'online':
            out = self.online[name]
            if name in ('cls_scores', 'bbox_preds', 'hidden_states'):
                return out[-1, frame.index, queries]
            return out[frame.index, queries]
        knowledge = self.knowledge[frame.video]
        if name == 'cls_scores':
            return knowledge[name][frame.teacher_frame, queries]
        if name == 'embeds':
            return knowledge[name][queries]
        raise KeyError(f'the offline teacher gives no per-query {name!r}; '
                       "use inputs.teacher='online'")

    def student_masks(self, frame: DistillFrame, queries: Tensor) -> Tensor:
        """(n, H / 4, W / 4) student mask logits of ``queries``."""
        return self.student_model.forward_masks(self.student, -1, frame.index,
                                                queries, frame.sample.metainfo)

    def teacher_masks(self, frame: DistillFrame, queries: Tensor) -> Tensor:
        """(n, H / 4, W / 4) mask logits of the online teacher."""
        return self.online_model.forward_masks(self.online, -1, frame.index,
                                               queries, frame.sample.metainfo)

    def rgb255(self) -> Tensor:
        """The student's frames as [0, 255] RGB (for flow networks)."""
        pre = self.student_model.data_preprocessor
        imgs = self.imgs.float()
        if getattr(pre, '_enable_normalize', False):
            imgs = imgs * pre.std + pre.mean
        if not getattr(pre, '_channel_conversion', True):
            imgs = imgs.flip(1)  # loaded BGR, not converted
        return imgs


@dataclass
class InputKind:
    """How a term gets its inputs: ``build(term, batch) -> loss``."""
    build: Callable[['DistillTerm', DistillBatch], Tensor]
    teachers: Tuple[Optional[str], ...]
    options: Dict[str, Any]
    attention: bool = False
    choices: Dict[str, tuple] = field(default_factory=dict)


#: input kinds by name, see the module docstring and ``docs/
#: companion_losses.md``
INPUT_KINDS: Dict[str, InputKind] = {}


def input_kind(name: str,
               teachers: Sequence[Optional[str]],
               attention: bool = False,
               choices: Optional[Dict[str, tuple]] = None,
               **options) -> Callable:
    """Register an input kind; ``teachers[0]`` is the default source,
    ``options`` the accepted options with their defaults."""

    def register(fn):
        INPUT_KINDS[name] = InputKind(fn, tuple(teachers), options, attention,
                                      choices or {})
        return fn

    return register


_FRAME_QUERY_SETS = dict(kind='query_embeds', group='frame', min_pairs=2)

#: the input kind a loss gets when ``inputs`` is omitted
DEFAULT_INPUTS: Dict[str, Any] = {
    'PixelKLDistillLoss': 'query_cls',
    'CosineKDLoss': 'query_embeds',
    'PairwiseSimilarityDistillLoss': _FRAME_QUERY_SETS,
    'CrossFrameAffinityDistillLoss': 'cross_frame_embeds',
    'AttentionCKALoss': 'decoder_attention',
    'InterIntraObjectDistillLoss': 'object_masks',
    'MotionGuidedTemporalLoss': 'track_masks',
    'InstanceTemporalConsistencyLoss': 'track_embeds',
}


class DistillTerm(nn.Module):
    """One extra term: a registered loss + its input kind and options.

    Args:
        cfg (dict): The loss config plus ``inputs`` and ``name`` (see the
            module docstring).
    """

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        cfg = copy.deepcopy(dict(cfg))
        name = cfg.pop('name', None)
        inputs = cfg.pop('inputs', None)
        if inputs is None:
            if cfg.get('type') not in DEFAULT_INPUTS:
                raise KeyError(f"extra_distill term {cfg.get('type')!r} "
                               'needs `inputs` (one of '
                               f'{sorted(INPUT_KINDS)})')
            inputs = copy.deepcopy(DEFAULT_INPUTS[cfg['type']])
        inputs = dict(kind=inputs) if isinstance(inputs, str) else dict(inputs)
        kind = inputs.pop('kind')
        if kind not in INPUT_KINDS:
            raise KeyError(f'unknown extra_distill input kind {kind!r}; '
                           f'choose from {sorted(INPUT_KINDS)}')
        spec = INPUT_KINDS[kind]
        teacher = inputs.pop('teacher', spec.teachers[0])
        if teacher not in spec.teachers:
            raise ValueError(f'input kind {kind!r} takes teacher in '
                             f'{spec.teachers}, got {teacher!r}')
        unknown = set(inputs) - set(spec.options)
        if unknown:
            raise KeyError(f'input kind {kind!r} has no options '
                           f'{sorted(unknown)}; it takes '
                           f'{sorted(spec.options)}')
        self.kind, self.spec, self.teacher = kind, spec, teacher
        self.options = {**copy.deepcopy(spec.options), **inputs}
        choices = dict(spec.choices)
        if 'group' in self.options:
            choices['group'] = ('batch', 'frame')
        for key, allowed in choices.items():
            if self.options[key] not in allowed:
                raise ValueError(f'{kind}.{key} must be one of {allowed}, '
                                 f'got {self.options[key]!r}')
        if 'flow' in self.options and self.options['flow'] is None:
            raise KeyError(f'input kind {kind!r} needs inputs.flow, a flow '
                           'provider config (mmookd.models.flow)')
        self.name = name or f'loss_{kind}'
        if not self.name.startswith('loss'):
            raise ValueError(f'term name {self.name!r} must start with '
                             "'loss' to be counted in the total loss")
        self.loss = MODELS.build(cfg)
        # frozen flow network: not a submodule (never trained or saved)
        object.__setattr__(self, '_flow_provider', None)

    @property
    def attention_pattern(self) -> Optional[str]:
        return self.options.get('modules') if self.spec.attention else None

    def flow_provider(self, device: torch.device) -> nn.Module:
        """The term's frozen flow provider, built on first use."""
        if self._flow_provider is None:
            provider = MODELS.build(copy.deepcopy(self.options['flow']))
            provider.requires_grad_(False)
            object.__setattr__(self, '_flow_provider', provider.eval())
        return self._flow_provider.to(device)

    def forward(self, batch: DistillBatch) -> Tensor:
        return self.spec.build(self, batch)

    def extra_repr(self) -> str:
        return (f'name={self.name}, inputs={self.kind}, '
                f'teacher={self.teacher}')


class DistillTerms(nn.ModuleList):
    """The ``extra_distill`` list of OOKD (parameter-free losses; flow
    networks are kept outside the module tree)."""

    def __init__(self, cfgs: Optional[Sequence[dict]] = None) -> None:
        super().__init__([DistillTerm(c) for c in cfgs or []])
        names = [t.name for t in self]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f'extra_distill names must be unique, {dup} '
                             'repeat: set `name` on the terms')

    @property
    def needs_offline(self) -> bool:
        return any(t.teacher == 'offline' for t in self)

    @property
    def needs_online(self) -> bool:
        return any(t.teacher == 'online' for t in self)

    @property
    def needs_teacher(self) -> bool:
        return self.needs_offline or self.needs_online

    @contextmanager
    def record(self,
               model: nn.Module,
               detach: bool = False) -> Iterator[Optional[dict]]:
        """Record ``model``'s deformable attention for the attention terms
        (hooks exist only inside the block); yields recorders by module
        pattern, or None when no term needs attention."""
        patterns = {t.attention_pattern for t in self} - {None}
        if not patterns:
            yield None
            return
        with ExitStack() as stack:
            yield {
                p:
                stack.enter_context(
                    DeformableAttentionRecorder(model, p, detach=detach))
                for p in sorted(patterns)
            }

    def forward(self, batch: DistillBatch) -> Dict[str, Tensor]:
        return {term.name: term(batch) for term in self}


# ----------------------------------------------------------------------
# input kinds
# ----------------------------------------------------------------------
def _mean(losses: List[Tensor], batch: DistillBatch) -> Tensor:
    return torch.stack(losses).mean() if losses else batch.zero()


def _query_pairs(term: DistillTerm, batch: DistillBatch, name: str) -> Tensor:
    """Student / teacher ``name`` (``'cls_scores'``, ``'embeds'`` or
    ``'masks'``) of the matched queries: one loss call on the pairs of all
    distilled frames (``group='batch'``) or one per frame with at least
    ``min_pairs`` pairs (``group='frame'``)."""
    preds, targets = [], []
    for frame in batch.per_frame():
        _, s_idx, t_idx = frame.pairs(term.teacher)
        if s_idx.numel() < term.options['min_pairs']:
            continue
        if name == 'masks':
            pred = batch.student_masks(frame, s_idx)
            target = batch.teacher_masks(frame, t_idx)
        else:
            pred = batch.student_field(frame, name, s_idx)
            target = batch.teacher_field(frame, term.teacher, name, t_idx)
        preds.append(pred)
        targets.append(target.to(pred.dtype))
    if term.options['group'] == 'frame':
        return _mean([term.loss(p, t) for p, t in zip(preds, targets)], batch)
    if not preds:
        return batch.zero()
    return term.loss(torch.cat(preds), torch.cat(targets))


@input_kind('query_cls', ('offline', 'online'), group='batch', min_pairs=1)
def _query_cls(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Class logits (P, K) of matched student / teacher queries."""
    return _query_pairs(term, batch, 'cls_scores')


@input_kind('query_embeds', ('offline', 'online'), group='batch', min_pairs=1)
def _query_embeds(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Embeddings (P, C) of matched queries (teacher offline: ``f_off``)."""
    return _query_pairs(term, batch, 'embeds')


@input_kind('query_masks', ('online', ), group='batch', min_pairs=1)
def _query_masks(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Mask logits (P, H/4, W/4) of matched student / teacher queries."""
    return _query_pairs(term, batch, 'masks')


@input_kind('object_masks', ('online', ), num_points=None)
def _object_masks(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Per frame, (N_pix, K) mask logits of the K matched queries (rows =
    pixels, optionally ``num_points`` shared random pixels); the loss adds
    the background object (``InterIntraObjectDistillLoss``)."""
    losses = []
    for frame in batch.per_frame():
        _, s_idx, t_idx = frame.pairs(term.teacher)
        if s_idx.numel() == 0:
            continue
        pred = batch.student_masks(frame, s_idx).flatten(1).t()
        target = batch.teacher_masks(frame, t_idx).flatten(1).t()
        num = term.options['num_points']
        if num is not None and num < pred.size(0):
            rows = torch.randperm(pred.size(0), device=pred.device)[:num]
            pred, target = pred[rows], target[rows]
        losses.append(term.loss(pred, target.to(pred.dtype)))
    return _mean(losses, batch)


@input_kind('cross_frame_embeds', ('offline', 'online'))
def _cross_frame_embeds(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Per sample, embeddings of the matched instances of the key frame
    (K, C) and of the reference frame (K', C), same order for both models
    (``CrossFrameAffinityDistillLoss``, query level)."""
    losses = []
    for key, ref in batch.video_pairs():
        (_, s_k, t_k), (_, s_r,
                        t_r) = key.pairs(term.teacher), ref.pairs(term.teacher)
        if s_k.numel() == 0 or s_r.numel() == 0:
            continue
        losses.append(
            term.loss(
                batch.student_field(key, 'embeds', s_k),
                batch.student_field(ref, 'embeds', s_r),
                batch.teacher_field(key, term.teacher, 'embeds', t_k),
                batch.teacher_field(ref, term.teacher, 'embeds', t_r)))
    return _mean(losses, batch)


@input_kind('mask_feats', ('online', ))
def _mask_feats(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """(B, C, H/8, W/8) mask features of the distilled frames (dense)."""
    idx = [f.index for f in batch.per_frame()]
    return term.loss(batch.student['mask_feats'][idx],
                     batch.online['mask_feats'][idx])


@input_kind('cross_frame_mask_feats', ('online', ))
def _cross_frame_mask_feats(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Mask features of the key and reference frames of every sample."""
    pairs = batch.video_pairs()
    key, ref = [k.index for k, _ in pairs], [r.index for _, r in pairs]
    s, t = batch.student['mask_feats'], batch.online['mask_feats']
    return term.loss(s[key], s[ref], t[key], t[ref])


@input_kind(
    'decoder_attention', ('online', ),
    attention=True,
    choices=dict(rows=('cells', 'matched', 'tokens')),
    modules=DECODER_CROSS_ATTN,
    layers=(-1, ),
    grid_size=(16, 16),
    rows='cells',
    num_rows=None)
def _decoder_attention(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Deformable attention rasterised onto a common grid
    (``AttentionCKALoss``).

    Per layer in ``layers`` (indices into each model's recorded modules
    matching ``modules``; ``-1`` is each model's last layer):

    * ``rows='cells'``: (B, G, heads * Nq) per frame, rows = grid cells (no
      correspondence; any query / head / level / point counts);
    * ``rows='matched'``: (P, heads * G), rows = the GT-matched queries of
      all distilled frames (mini-batch CKA, needs P >= 3);
    * ``rows='tokens'``: (B, Nq, heads * G), rows = the queries themselves,
      for the encoder's pixel queries (same input size for both models;
      ``num_rows`` shared random rows).
    """
    opts = term.options
    pattern = opts['modules']
    s_rec = batch.student_attention[pattern].layer_records()
    t_rec = batch.teacher_attention[pattern].layer_records()
    frames = batch.per_frame()
    idx = [f.index for f in frames]
    losses = []
    for layer in opts['layers']:
        maps = []
        for rec in (s_rec[layer], t_rec[layer]):
            maps.append(
                rasterize_deformable_attention(rec['sampling_locations'][idx],
                                               rec['attention_weights'][idx],
                                               tuple(opts['grid_size'])))
        m_s, m_t = maps[0], maps[1].to(maps[0].dtype)
        if opts['rows'] == 'cells':
            losses.append(
                term.loss(
                    attention_cells_by_columns(m_s),
                    attention_cells_by_columns(m_t)))
        elif opts['rows'] == 'tokens':
            x_s, x_t = m_s.flatten(2), m_t.flatten(2)
            num = opts['num_rows']
            if num is not None and num < x_s.size(1):
                rows = torch.randperm(x_s.size(1), device=x_s.device)[:num]
                x_s, x_t = x_s[:, rows], x_t[:, rows]
            losses.append(term.loss(x_s, x_t))
        else:  # 'matched'
            rows_s, rows_t = [], []
            for j, frame in enumerate(frames):
                _, s_idx, t_idx = frame.pairs(term.teacher)
                rows_s.append(m_s[j, s_idx].flatten(1))
                rows_t.append(m_t[j, t_idx].flatten(1))
            x_s, x_t = torch.cat(rows_s), torch.cat(rows_t)
            if x_s.size(0) >= 3:  # CKA of 2 rows is always 1
                losses.append(term.loss(x_s, x_t))
    return _mean(losses, batch)


def _track_rows(key: DistillFrame, ref: DistillFrame) -> Tuple[Tensor, Tensor]:
    """GT rows of the instances matched by the student in both frames."""
    rows_k, rows_r = [], []
    ref_rows = {
        int(i): r
        for r, i in enumerate(ref.instance_ids.tolist()) if ref.student[r] >= 0
    }
    for r, i in enumerate(key.instance_ids.tolist()):
        if key.student[r] >= 0 and int(i) in ref_rows:
            rows_k.append(r)
            rows_r.append(ref_rows[int(i)])
    device = key.student.device
    return (torch.tensor(rows_k, dtype=torch.long, device=device),
            torch.tensor(rows_r, dtype=torch.long, device=device))


def _image_flow(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """(N, 2, H, W) flow key -> reference of every sample, computed once
    per batch and provider."""
    provider = term.flow_provider(batch.imgs.device)
    key = ('flow', id(provider))
    if key not in batch.cache:
        pairs = batch.video_pairs()
        rgb = batch.rgb255()
        batch.cache[key] = provider(rgb[[k.index for k, _ in pairs]],
                                    rgb[[r.index for _, r in pairs]])
    return batch.cache[key]


@input_kind('track_masks', (None, ), flow=None)
def _track_masks(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Instance L_TL (``MotionGuidedTemporalLoss``): per sample, the
    student's masks of the GT tracks it matched in both frames, (K, 1, H/4,
    W/4) each, with the image flow (shared) or one box flow per track."""
    provider = term.flow_provider(batch.imgs.device)
    flows = None if provider.input_type == 'boxes' else _image_flow(
        term, batch)
    losses = []
    for v, (key, ref) in enumerate(batch.video_pairs()):
        rows_k, rows_r = _track_rows(key, ref)
        if rows_k.numel() == 0:
            continue
        masks = batch.student_masks(key, key.student[rows_k])[:, None]
        masks_ref = batch.student_masks(ref, ref.student[rows_r])[:, None]
        if flows is None:
            stride = batch.imgs.size(-1) / masks.size(-1)
            flow = provider(key.gt_boxes[rows_k], ref.gt_boxes[rows_r],
                            masks.shape[-2:], stride)
        else:
            flow = flows[v:v + 1]
        losses.append(
            term.loss(
                masks,
                masks_ref,
                flow,
                img=batch.imgs[key.index][None],
                img_ref=batch.imgs[ref.index][None]))
    return _mean(losses, batch)


@input_kind('semantic_maps', (None, ), flow=None, topk=None)
def _semantic_maps(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Dense L_TL (``MotionGuidedTemporalLoss``): per frame the semantic
    aggregation ``S(x, c) = sum_q p_q(c) sigmoid(m_q(x))`` (Mask2Former's
    semantic inference, sigmoid class probabilities) over all queries or the
    ``topk`` highest-scoring ones; no correspondence needed."""
    if getattr(term.loss, 'activation', 'none') != 'none':
        raise ValueError('semantic_maps are probabilities: use the loss '
                         "with activation='none'")
    flows = _image_flow(term, batch)
    maps = {}
    for frame in batch.frames:
        probs = batch.student['cls_scores'][-1, frame.index].sigmoid()
        queries = torch.arange(probs.size(0), device=probs.device)
        topk = term.options['topk']
        if topk is not None and topk < probs.size(0):
            queries = probs.max(1).values.topk(topk).indices
        masks = batch.student_masks(frame, queries).sigmoid()
        maps[frame.index] = torch.einsum('qc,qhw->chw', probs[queries], masks)
    pairs = batch.video_pairs()
    key = torch.stack([maps[k.index] for k, _ in pairs])
    ref = torch.stack([maps[r.index] for _, r in pairs])
    return term.loss(
        key,
        ref,
        flows,
        img=batch.imgs[[k.index for k, _ in pairs]],
        img_ref=batch.imgs[[r.index for _, r in pairs]])


@input_kind(
    'track_embeds', (None, ),
    choices=dict(field=('embeds', 'cls_scores')),
    field='embeds')
def _track_embeds(term: DistillTerm, batch: DistillBatch) -> Tensor:
    """Flow-free instance temporal term: per sample, the student's
    ``field`` (``'embeds'`` or ``'cls_scores'``) of the GT tracks matched
    in both frames, (K, C) at the key and at the reference frame."""
    preds, preds_ref = [], []
    for key, ref in batch.video_pairs():
        rows_k, rows_r = _track_rows(key, ref)
        if rows_k.numel():
            name = term.options['field']
            preds.append(batch.student_field(key, name, key.student[rows_k]))
            preds_ref.append(
                batch.student_field(ref, name, ref.student[rows_r]))
    if not preds:
        return batch.zero()
    return term.loss(torch.cat(preds), torch.cat(preds_ref))
