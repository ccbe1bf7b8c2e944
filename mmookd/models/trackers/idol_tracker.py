# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's online tracker: per-frame filtering and the memory-bank tracker.

Implements IDOL inference as specified in docs/hyperparameters.md §11 (Wu et
al., "In Defense of Online Models for Video Instance Segmentation", ECCV 2022,
Sec. 3.3) with the official defaults:

* :func:`filter_frame_detections` -- the per-frame filtering that runs
  *before* the tracker (score threshold 0.1 with a top-1 fallback, then
  class-aware box NMS at IoU 0.9);
* :class:`IDOLTracker` -- greedy mask NMS, bi-softmax matching against a
  per-track memory of the last ``memory_len`` embeddings (score + temporal
  weighting), frame weighting by ``exist_frame``, birth and death.

Host-device traffic: all per-detection tensors stay on the input device; the
only device-to-host copy per frame is one small ``(n, n + T)`` matrix (mask
IoUs and raw embedding similarities, ``n`` detections, ``T`` live tracks) on
which the inherently sequential greedy decisions are taken.
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

__all__ = [
    'filter_frame_detections', 'greedy_assign', 'greedy_nms_from_iou',
    'mask_iou_matrix', 'weighted_memory_embeddings', 'IDOLTracker'
]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax of a small host array (float32)."""
    x = np.exp(x - x.max(axis=axis, keepdims=True))
    return x / x.sum(axis=axis, keepdims=True)


def greedy_nms_from_iou(iou: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS on a pairwise IoU matrix of score-sorted candidates.

    Candidate ``j`` is suppressed when a *kept* candidate ``i < j`` has
    ``iou[i, j] > iou_thr``; this is the rule of torchvision's ``nms`` and of
    IDOL's ``mask_nms`` (§11 "Per-frame filtering").

    Args:
        iou (np.ndarray): ``(n, n)`` IoUs, rows/cols in descending score
            order.
        iou_thr (float): Suppression threshold (strictly greater suppresses).

    Returns:
        np.ndarray: ``(n,)`` bool keep flags.
    """
    n = iou.shape[0]
    keep = np.ones(n, dtype=bool)
    for i in range(n - 1):
        if keep[i]:
            keep[i + 1:] &= ~(iou[i, i + 1:] > iou_thr)
    return keep


def greedy_assign(match: np.ndarray, exist_frames: np.ndarray,
                  match_score_thr: float, frame_weight: bool) -> np.ndarray:
    """IDOL's greedy one-to-one acceptance with frame weighting (§11).

    Shared by :class:`IDOLTracker` and the tensor tracker of the fast path,
    so both take exactly the same float32 decisions on the host.

    Args:
        match (np.ndarray): ``(n, T)`` float32 score matrix, rows in
            descending detection score, columns in track creation order. A
            taken column is zeroed for the remaining detections (on a copy).
        exist_frames (np.ndarray): ``(T,)`` frames each track was matched in.
        match_score_thr (float): Acceptance threshold.
        frame_weight (bool): Weight the candidates by ``exist_frames``.

    Returns:
        np.ndarray: ``(n,)`` column per detection, -1 if unmatched.
    """
    match = match.copy()
    exist = np.asarray(exist_frames).astype(np.float32)
    thr = np.float32(match_score_thr)
    half = np.float32(0.5)
    rows = np.full(match.shape[0], -1, dtype=np.int64)
    for i in range(match.shape[0]):
        row = match[i]
        cand = row > half
        if frame_weight and cand.sum() > 1:
            counts = exist[cand]
            weighted = row * counts.mean(dtype=np.float32)
            weighted[cand] = row[cand] * counts
            row = weighted
        col = int(row.argmax())
        if row[col] > thr:
            rows[i] = col
            match[:, col] = 0
    return rows


def mask_iou_matrix(masks: Tensor, mask_thr: float = 0.5) -> Tensor:
    """Pairwise IoU of binarised masks, IDOL style (§11).

    Masks are binarised with ``> mask_thr`` (IDOL thresholds the sigmoid of
    its stride-4 logits at 0.5, so pass probabilities or binary masks).
    IDOL's smoothing ``(inter + 1e-6) / (union + 1e-6)`` is kept, which makes
    two empty masks overlap with IoU 1 exactly as in the reference.

    Args:
        masks (Tensor): ``(n, h, w)`` masks at any working resolution.
        mask_thr (float): Binarisation threshold. Defaults to 0.5.

    Returns:
        Tensor: ``(n, n)`` float32 IoU matrix on ``masks.device``.
    """
    flat = (masks.flatten(1) > mask_thr).float()
    inter = flat @ flat.t()
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    return (inter + 1e-6) / (union + 1e-6)


def weighted_memory_embeddings(embeds: Tensor,
                               scores: Tensor,
                               valid: Tensor,
                               temporal_weight: bool,
                               min_entries: Optional[float] = None) -> Tensor:
    """Long-match memory embedding of every row of a memory bank (§11).

    ``sum_j w_j e_j / sum_j w_j`` over a row's ``L`` valid, right-aligned
    entries (oldest ``j = 1`` to newest ``j = L``), ``w_j = s_j + j / L``
    when ``temporal_weight`` else ``s_j``. Shared by :class:`IDOLTracker`
    and :class:`~.TensorIDOLTracker`, so both take the same float32 steps.

    Args:
        embeds (Tensor): ``(R, L, C)`` stored embeddings.
        scores (Tensor): ``(R, L)`` float32 scores of the entries.
        valid (Tensor): ``(R, L)`` validity of the entries (bool or 0/1).
        temporal_weight (bool): Add the temporal term ``j / L``.
        min_entries (float, optional): Lower bound of the per-row entry
            count ``L`` (e.g. ``1.0`` where rows without an entry exist and
            must not divide by zero); ``None`` leaves ``L`` as it is.
            Defaults to None.

    Returns:
        Tensor: ``(R, C)`` memory embeddings.
    """
    memory_len = valid.shape[1]
    n_valid = valid.sum(1, keepdim=True).float()  # (R, 1)
    if min_entries is not None:
        n_valid = n_valid.clamp(min=min_entries)
    weights = scores
    if temporal_weight:
        slots = torch.arange(
            memory_len, device=valid.device, dtype=torch.float32)
        # position j (1 = oldest) of each right-aligned slot
        j = slots[None, :] - (memory_len - n_valid) + 1.0
        weights = weights + j / n_valid
    weights = weights * valid
    total = weights.sum(1, keepdim=True).clamp(min=1e-12)
    return (weights[..., None] * embeds).sum(1) / total


def filter_frame_detections(
        cls_scores: Tensor,
        bboxes: Tensor,
        select_thr: float = 0.1,
        nms_iou_thr: float = 0.9) -> Tuple[Tensor, Tensor, Tensor]:
    """IDOL's per-frame filtering before the tracker (§11, steps 1-2).

    1. keep queries whose max class probability is ``> select_thr``
       (``INFERENCE_SELECT_THRES`` = 0.1); when none passes, keep the single
       best query so that every frame feeds the tracker (this is what keeps
       the tracker's death clock ticking in the reference);
    2. class-aware box NMS (class = argmax) at IoU ``nms_iou_thr`` = 0.9,
       which removes the duplicates IDOL's one-to-many training produces
       (§11); the top-1 fallback skips NMS like the reference.

    The NMS is done in plain torch (one IoU matrix + a greedy pass), so it
    needs no compiled ops and matches ``torchvision.ops.batched_nms``.

    Args:
        cls_scores (Tensor): ``(Q, K)`` per-query class probabilities
            (sigmoid outputs for IDOL).
        bboxes (Tensor): ``(Q, 4)`` boxes in ``xyxy`` order, any consistent
            scale (IoU is scale invariant; IDOL uses normalised boxes).
        select_thr (float): Score threshold. Defaults to 0.1.
        nms_iou_thr (float): Class-aware box-NMS IoU threshold.
            Defaults to 0.9.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``inds`` (query indices, descending
        score, long), ``scores`` (max class probability) and ``labels``
        (argmax class, 0-based) of the kept queries.
    """
    max_scores, labels = cls_scores.max(dim=1)
    selected = torch.nonzero(max_scores > select_thr).squeeze(1)
    if selected.numel() == 0:
        inds = max_scores.argmax().view(1)
        return inds, max_scores[inds], labels[inds]
    order = max_scores[selected].argsort(descending=True, stable=True)
    selected = selected[order]
    sel_labels = labels[selected]
    if selected.numel() > 1:
        iou = bbox_overlaps(bboxes[selected].float(), bboxes[selected].float())
        # class-aware: boxes of different classes never suppress each other
        iou = iou * (sel_labels[:, None] == sel_labels[None, :])
        keep = greedy_nms_from_iou(iou.cpu().numpy(), nms_iou_thr)
        selected = selected[torch.from_numpy(keep).to(selected.device)]
    return selected, max_scores[selected], labels[selected]


@MODELS.register_module()
class IDOLTracker:
    """IDOL's memory-bank tracker (§11, official defaults).

    Per frame, on detections that already went through
    :func:`filter_frame_detections`:

    1. **Mask NMS** in score order at ``mask_nms_thr`` (IoU of binarised
       masks), since one-to-many training yields duplicate masks that box
       NMS at 0.9 lets through.
    2. **Bi-softmax matching** (``match_metric='bisoftmax'``): raw dot
       products ``S = E_det E_mem^T`` (no L2 norm, no temperature, as in
       training), ``M = (softmax_mem(S) + softmax_det(S)) / 2``. Each live
       track's memory embedding is the weighted mean of its last
       ``memory_len`` embeddings ``e_1..e_L`` (oldest to newest) with
       ``w_j = s_j + j / L`` (``temporal_weight``; the detection score is
       *added*), or a momentum embedding when ``long_match=False``.
    3. **Greedy one-to-one acceptance** in score order: with
       ``frame_weight``, if more than one track has ``M > 0.5`` for the
       detection, those tracks' scores are multiplied by their
       ``exist_frame`` counts (frames matched so far) and the others by the
       mean of those counts, favouring long-lived tracks over fresh ones
       (IDOL Sec. 3.3); the argmax is accepted if ``> match_score_thr`` and
       that track's column is zeroed for the remaining detections (no
       re-normalisation).
    4. **Birth**: with an empty memory detections with
       ``s > init_score_thr`` start tracks, otherwise unmatched detections
       with ``s > addnew_score_thr``. Other detections are not output
       (id -1). Among them, "backdrops" (mask IoU ``< nms_thr_post`` with
       every higher-scored detection) are recorded in :attr:`backdrops` for
       one frame only; like the reference they are never matched.
    5. **Memory update and death**: matched and new tracks append their
       embedding and score (trimmed to ``memory_len``); after the frame is
       processed a track is removed when ``frame_id - last_matched_frame >=
       memo_tracklet_frames``. A track last matched at frame ``f`` can thus
       still be matched at frame ``f + memo_tracklet_frames`` and is gone
       after ``memo_tracklet_frames`` consecutive unmatched frames.

    Memory is bounded: live tracks x ``memory_len`` embeddings (padded
    ``(T, memory_len, C)`` tensors on the embeddings' device), independent
    of video length.

    Differences from the reference implementation, none of which changes
    the output of the reference pipeline: pruning also runs on a frame with
    no detections (the reference skips the memory update then, but its
    top-1 fallback never produces such a frame); detections are sorted by
    score internally (the reference receives them sorted from NMS); the
    unused box/velocity/label bookkeeping and the unused arguments
    ``obj_score_thr``, ``nms_conf_thr``, ``nms_backdrop_iou_thr``,
    ``nms_class_iou_thr`` and ``with_cats`` are dropped.

    Args:
        init_score_thr (float): Birth threshold when the memory is empty.
            Defaults to 0.2.
        addnew_score_thr (float): Birth threshold for unmatched detections
            when tracks exist (``ADD_NEW_SCORE``; 0.3 for OVIS).
            Defaults to 0.2.
        match_score_thr (float): Acceptance threshold on the (frame-weighted)
            bi-softmax score. Defaults to 0.5.
        mask_nms_thr (float): Mask-NMS IoU threshold (``NMS_PRE``; 0.3 for
            OVIS). Defaults to 0.5.
        nms_thr_post (float): Backdrop IoU threshold. Defaults to 0.05.
        memory_len (int): Embeddings kept per track. Defaults to 3.
        memo_tracklet_frames (int): Unmatched frames after which a track
            dies. Defaults to 10.
        memo_momentum (float): Momentum of the fallback embedding used when
            ``long_match=False`` (``e <- (1 - m) e + m e_new``).
            Defaults to 0.8.
        long_match (bool): Match against the weighted memory of the last
            ``memory_len`` embeddings. Defaults to True.
        temporal_weight (bool): Add ``j / L`` to the memory weights.
            Defaults to True.
        frame_weight (bool): Frame weighting by ``exist_frame``.
            Defaults to True.
        match_metric (str): ``'bisoftmax'`` (IDOL), ``'softmax'``
            (detection-to-track only) or ``'cosine'``.
            Defaults to ``'bisoftmax'``.
        mask_thr (float): Binarisation threshold of the masks passed to
            :meth:`track` (probabilities or binary masks). Defaults to 0.5.
    """

    def __init__(self,
                 init_score_thr: float = 0.2,
                 addnew_score_thr: float = 0.2,
                 match_score_thr: float = 0.5,
                 mask_nms_thr: float = 0.5,
                 nms_thr_post: float = 0.05,
                 memory_len: int = 3,
                 memo_tracklet_frames: int = 10,
                 memo_momentum: float = 0.8,
                 long_match: bool = True,
                 temporal_weight: bool = True,
                 frame_weight: bool = True,
                 match_metric: str = 'bisoftmax',
                 mask_thr: float = 0.5) -> None:
        if match_metric not in ('bisoftmax', 'softmax', 'cosine'):
            raise ValueError(
                "match_metric must be 'bisoftmax', 'softmax' or 'cosine', "
                f'got {match_metric!r}')
        if memory_len < 1:
            raise ValueError(f'memory_len must be >= 1, got {memory_len}')
        if memo_tracklet_frames < 1:
            raise ValueError('memo_tracklet_frames must be >= 1, got '
                             f'{memo_tracklet_frames}')
        if not 0.0 <= memo_momentum <= 1.0:
            raise ValueError(
                f'memo_momentum must be in [0, 1], got {memo_momentum}')
        self.init_score_thr = init_score_thr
        self.addnew_score_thr = addnew_score_thr
        self.match_score_thr = match_score_thr
        self.mask_nms_thr = mask_nms_thr
        self.nms_thr_post = nms_thr_post
        self.memory_len = memory_len
        self.memo_tracklet_frames = memo_tracklet_frames
        self.memo_momentum = memo_momentum
        self.long_match = long_match
        self.temporal_weight = temporal_weight
        self.frame_weight = frame_weight
        self.match_metric = match_metric
        self.mask_thr = mask_thr
        self.reset()

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track; call at the first frame of each video."""
        self.num_tracks = 0  # ids handed out so far (next new id)
        self._track_ids: List[int] = []
        self._last_frame = np.zeros(0, dtype=np.int64)
        self._exist_frame = np.zeros(0, dtype=np.int64)
        # padded, right-aligned memory: slot L-1 holds the newest entry
        self._embeds: Optional[Tensor] = None  # (T, L, C) float32
        self._scores: Optional[Tensor] = None  # (T, L) float32
        self._valid: Optional[Tensor] = None  # (T, L) bool
        self._momentum_embeds: Optional[Tensor] = None  # (T, C)
        self._labels: Optional[Tensor] = None  # (T,) last label
        self.backdrops: Optional[Tensor] = None

    @property
    def empty(self) -> bool:
        """Whether no track is alive."""
        return len(self._track_ids) == 0

    @property
    def ids(self) -> List[int]:
        """Ids of the live tracks, in creation order (= memory order)."""
        return list(self._track_ids)

    @property
    def exist_frames(self) -> List[int]:
        """Number of frames each live track has been matched in."""
        return self._exist_frame.tolist()

    @property
    def last_frames(self) -> List[int]:
        """Last frame in which each live track was matched."""
        return self._last_frame.tolist()

    @property
    def num_memory_entries(self) -> int:
        """Stored embeddings over all live tracks (bounded by
        ``len(ids) * memory_len``)."""
        return 0 if self._valid is None else int(self._valid.sum())

    def memory_embeddings(self) -> Tensor:
        """Memory embedding of every live track, in :attr:`ids` order.

        With ``long_match``: ``sum_j w_j e_j / sum_j w_j`` over the track's
        last ``L <= memory_len`` entries (oldest ``j = 1`` to newest
        ``j = L``), ``w_j = s_j + j / L`` when ``temporal_weight`` else
        ``s_j`` (§11 "Memory embedding"). Otherwise the momentum
        embedding.

        Returns:
            Tensor: ``(T, C)`` float32.
        """
        if self.empty:
            raise RuntimeError('the tracker memory is empty')
        if not self.long_match:
            return self._momentum_embeds
        return weighted_memory_embeddings(self._embeds, self._scores,
                                          self._valid, self.temporal_weight)

    # ------------------------------------------------------------------
    # tracking
    # ------------------------------------------------------------------
    def _match_scores(self, sims: np.ndarray) -> np.ndarray:
        """Score matrix ``M`` (n, T) from the similarities (host side).

        ``sims`` are raw dot products for ``'bisoftmax'`` / ``'softmax'``
        and cosines for ``'cosine'`` (returned as they are).
        """
        if self.match_metric == 'cosine':
            return sims
        d2t = _softmax(sims, axis=1)
        if self.match_metric == 'softmax':
            return d2t
        return (d2t + _softmax(sims, axis=0)) / np.float32(2)

    def _greedy_assign(self, match: np.ndarray) -> np.ndarray:
        """Greedy one-to-one acceptance with frame weighting (§11).

        Runs on the host in float32 like the reference's tensors; ties go
        to the lowest memory row (the oldest track).

        Args:
            match (np.ndarray): ``(n, T)`` float32 score matrix, rows in
                descending detection score. A taken column is zeroed for the
                remaining detections (on a copy).

        Returns:
            np.ndarray: ``(n,)`` memory row per detection, -1 if unmatched.
        """
        return greedy_assign(match, self._exist_frame, self.match_score_thr,
                             self.frame_weight)

    @torch.no_grad()
    def track(self,
              frame_id: int,
              embeds: Tensor,
              scores: Tensor,
              labels: Optional[Tensor] = None,
              masks: Optional[Tensor] = None,
              class_scores: Optional[Tensor] = None) -> Tensor:
        """Associate one frame's detections with the live tracks.

        Args:
            frame_id (int): Index of the frame in the video (0-based,
                increasing). The tracker is *not* reset automatically; call
                :meth:`reset` at the start of every video.
            embeds (Tensor): ``(n, C)`` instance embeddings.
            scores (Tensor): ``(n,)`` detection scores (max class prob.).
            labels (Tensor, optional): ``(n,)`` labels; only stored as the
                track's last label (IDOL does not use them to match).
            masks (Tensor, optional): ``(n, h, w)`` mask probabilities or
                binary masks at any working resolution, used for mask NMS
                and backdrops; ``None`` disables both.
            class_scores (Tensor, optional): Unused; accepted so that every
                mmookd tracker shares this call signature.

        Returns:
            Tensor: ``(n,)`` long track ids on ``scores.device``, in input
            order; -1 for detections that are not output (suppressed by mask
            NMS, unmatched below the birth threshold, backdrops).
        """
        del class_scores
        device = scores.device
        n = scores.shape[0]
        if n == 0:
            self.backdrops = torch.zeros(0, dtype=torch.bool, device=device)
            self._prune(frame_id)
            return torch.full((0, ), -1, dtype=torch.long, device=device)
        embeds = embeds.float()
        scores = scores.float()
        order = scores.argsort(descending=True, stable=True)
        s_embeds = embeds[order]
        s_scores = scores[order]

        # One device-to-host copy: mask IoUs, similarities and scores.
        blocks = []
        if masks is not None:
            blocks.append(mask_iou_matrix(masks[order], self.mask_thr))
        if not self.empty:
            memo_embeds = self.memory_embeddings()
            det_embeds = s_embeds
            if self.match_metric == 'cosine':
                det_embeds = F.normalize(det_embeds, dim=1)
                memo_embeds = F.normalize(memo_embeds, dim=1)
            blocks.append(det_embeds @ memo_embeds.t())
        blocks.append(s_scores[:, None])
        host = torch.cat(blocks, dim=1).cpu().numpy()
        n_masks = n if masks is not None else 0
        iou = host[:, :n_masks]
        sims = host[:, n_masks:-1]
        host_scores = host[:, -1]

        # 1. mask NMS (greedy, score order)
        if masks is not None:
            keep = greedy_nms_from_iou(iou, self.mask_nms_thr)
        else:
            keep = np.ones(n, dtype=bool)
        kept = np.nonzero(keep)[0]
        k_scores = host_scores[kept]

        # 2.-3. bi-softmax + greedy acceptance
        if self.empty:
            rows = np.full(len(kept), -1, dtype=np.int64)
            birth_thr = self.init_score_thr
        else:
            rows = self._greedy_assign(self._match_scores(sims[kept]))
            birth_thr = self.addnew_score_thr

        # 4. births in score order
        k_ids = np.full(len(kept), -1, dtype=np.int64)
        matched = rows >= 0
        if matched.any():
            k_ids[matched] = np.asarray(self._track_ids)[rows[matched]]
        born = (~matched) & (k_scores > np.float32(birth_thr))
        num_born = int(born.sum())
        k_ids[born] = np.arange(self.num_tracks, self.num_tracks + num_born)
        self.num_tracks += num_born

        # backdrops: not output and (almost) no overlap with any
        # higher-scored detection; bookkeeping only (never matched)
        backdrop = np.zeros(n, dtype=bool)
        if masks is not None:
            k_iou = iou[np.ix_(kept, kept)]
            for i in np.nonzero(k_ids < 0)[0]:
                if (k_iou[i, :i] < self.nms_thr_post).all():
                    backdrop[kept[i]] = True

        # 5. memory update and death
        det_rows = torch.from_numpy(kept[matched]).to(device)
        mem_rows = torch.from_numpy(rows[matched]).to(device)
        new_dets = torch.from_numpy(kept[born]).to(device)
        s_labels = labels[order] if labels is not None else None
        self._update_memory(frame_id, s_embeds, s_scores, s_labels, det_rows,
                            mem_rows, rows[matched], new_dets,
                            k_ids[born].tolist())
        self._prune(frame_id)

        # back to input order
        sorted_ids = np.full(n, -1, dtype=np.int64)
        sorted_ids[kept] = k_ids
        ids = torch.full((n, ), -1, dtype=torch.long, device=device)
        ids[order] = torch.from_numpy(sorted_ids).to(device)
        back = torch.zeros(n, dtype=torch.bool, device=device)
        back[order] = torch.from_numpy(backdrop).to(device)
        self.backdrops = back
        return ids

    def _update_memory(self, frame_id: int, embeds: Tensor, scores: Tensor,
                       labels: Optional[Tensor], det_rows: Tensor,
                       mem_rows: Tensor, mem_rows_np: np.ndarray,
                       new_dets: Tensor, new_ids: List[int]) -> None:
        """Append matched detections to their tracks and create new ones."""
        L = self.memory_len
        m = self.memo_momentum
        if labels is None:
            labels = torch.full_like(scores, -1, dtype=torch.long)
        if mem_rows.numel() > 0:
            e_new = embeds[det_rows]
            self._embeds[mem_rows] = torch.cat(
                [self._embeds[mem_rows, 1:], e_new[:, None]], dim=1)
            self._scores[mem_rows] = torch.cat(
                [self._scores[mem_rows, 1:], scores[det_rows, None]], dim=1)
            ones = self._valid.new_ones(mem_rows.numel(), 1)
            self._valid[mem_rows] = torch.cat(
                [self._valid[mem_rows, 1:], ones], dim=1)
            self._momentum_embeds[mem_rows] = (
                (1 - m) * self._momentum_embeds[mem_rows] + m * e_new)
            self._labels[mem_rows] = labels[det_rows]
            self._last_frame[mem_rows_np] = frame_id
            self._exist_frame[mem_rows_np] += 1
        if new_dets.numel() > 0:
            k = new_dets.numel()
            e_new = embeds[new_dets]
            embeds_pad = e_new.new_zeros(k, L, e_new.shape[1])
            embeds_pad[:, -1] = e_new
            scores_pad = e_new.new_zeros(k, L)
            scores_pad[:, -1] = scores[new_dets]
            valid_pad = torch.zeros(
                k, L, dtype=torch.bool, device=e_new.device)
            valid_pad[:, -1] = True
            if self._embeds is None:
                self._embeds, self._scores = embeds_pad, scores_pad
                self._valid, self._momentum_embeds = valid_pad, e_new.clone()
                self._labels = labels[new_dets]
            else:
                self._embeds = torch.cat([self._embeds, embeds_pad])
                self._scores = torch.cat([self._scores, scores_pad])
                self._valid = torch.cat([self._valid, valid_pad])
                self._momentum_embeds = torch.cat(
                    [self._momentum_embeds, e_new])
                self._labels = torch.cat([self._labels, labels[new_dets]])
            self._track_ids.extend(int(i) for i in new_ids)
            self._last_frame = np.concatenate(
                [self._last_frame,
                 np.full(k, frame_id, dtype=np.int64)])
            self._exist_frame = np.concatenate(
                [self._exist_frame,
                 np.ones(k, dtype=np.int64)])

    def _prune(self, frame_id: int) -> None:
        """Drop tracks unmatched for ``memo_tracklet_frames`` frames."""
        if self.empty:
            return
        alive = (frame_id - self._last_frame) < self.memo_tracklet_frames
        if alive.all():
            return
        self._track_ids = [
            i for i, a in zip(self._track_ids, alive.tolist()) if a
        ]
        self._last_frame = self._last_frame[alive]
        self._exist_frame = self._exist_frame[alive]
        if not self._track_ids:
            # keep nothing, so the next birth uses init_score_thr
            self._embeds = self._scores = self._valid = None
            self._momentum_embeds = self._labels = None
            return
        idx = torch.from_numpy(np.nonzero(alive)[0]).to(self._embeds.device)
        self._embeds = self._embeds[idx]
        self._scores = self._scores[idx]
        self._valid = self._valid[idx]
        self._momentum_embeds = self._momentum_embeds[idx]
        self._labels = self._labels[idx]
