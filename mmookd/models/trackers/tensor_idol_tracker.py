# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's memory-bank tracker with a fixed-size device memory (issue 15).

:class:`IDOLTracker` keeps Python lists of tracks and copies a matrix to
the host for every decision; run frame by frame on a GPU, every such copy
and every ``.item()`` stalls the launch queue. This tracker takes the same
decisions (docs/hyperparameters.md §11) with the state split in two:

* on the device, fixed-size slot tensors with validity masks: ``(S, L, C)``
  embeddings, ``(S, L)`` scores and validity, ``(S, C)`` momentum
  embeddings and ``(S,)`` labels. The memory embeddings and the raw
  similarities of a frame's candidates to every slot are computed there
  (:meth:`similarities`), and the memory update, births and deaths are
  index writes into the slots (:meth:`commit`), fed by one upload of small
  index arrays;
* on the host, the per-slot bookkeeping the decisions need (track id, last
  matched frame, matched-frame count, alive flag): ``S`` integers each,
  never downloaded.

The greedy decisions themselves (mask NMS, bi-softmax acceptance in score
order with frame weighting, births, backdrops) are inherently sequential:
done on the device they would cost one kernel launch per detection, so
they run on the host (:meth:`decide`) on the one per-frame download the
fast path makes anyway, with the very code of :class:`IDOLTracker`
(:func:`greedy_assign`, :func:`greedy_nms_from_iou`): same float32
arithmetic, same tie breaks (columns in track creation order).

The slot capacity doubles when more tracks are alive than slots (the host
knows the count, so growing needs no synchronisation); slots of dead
tracks are reused by later births.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .idol_tracker import (
    IDOLTracker,
    greedy_assign,
    greedy_nms_from_iou,
    mask_iou_matrix,
    weighted_memory_embeddings,
)

__all__ = ['TensorIDOLTracker', 'TrackDecision', 'upload']


def upload(array: np.ndarray, device: torch.device) -> Tensor:
    """Host array -> device tensor without stalling the host.

    On CUDA the copy goes through pinned memory and is asynchronous; on the
    CPU it is a view of the array.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == 'cuda':
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass
class TrackDecision:
    """What :meth:`TensorIDOLTracker.decide` decided for one frame.

    Attributes:
        ids (np.ndarray): ``(n,)`` track id per detection (-1: not output).
        backdrops (np.ndarray): ``(n,)`` bool backdrop flags.
        rows (np.ndarray): Slots to append an entry to (matched, then new).
        dets (np.ndarray): Detection index feeding each of ``rows``.
        reset (np.ndarray): ``rows`` that start a new track (bool).
        dead (np.ndarray): Slots whose track dies after this frame.
        capacity (int): Slot count the device memory must have.
    """
    ids: np.ndarray
    backdrops: np.ndarray
    rows: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))
    dets: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))
    reset: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    dead: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))
    capacity: int = 0


@MODELS.register_module()
class TensorIDOLTracker(IDOLTracker):
    """:class:`IDOLTracker`'s decisions on a fixed-size device memory.

    Same arguments and the same outputs as :class:`IDOLTracker` (tested
    equal on scripted and real videos); :meth:`track` is a drop-in
    replacement with one device-to-host copy per call. The fast per-frame
    path of :class:`~mmookd.models.vis.IDOL` calls the three steps
    separately so that one download serves the detector filtering and the
    tracker together: :meth:`similarities` (device), :meth:`decide`
    (host), :meth:`commit` (device).

    Args:
        init_capacity (int): Initial number of slots (doubles when full).
            Defaults to 32.
        **kwargs: :class:`IDOLTracker`'s arguments.
    """

    def __init__(self, init_capacity: int = 32, **kwargs) -> None:
        if init_capacity < 1:
            raise ValueError(
                f'init_capacity must be >= 1, got {init_capacity}')
        self.init_capacity = init_capacity
        super().__init__(**kwargs)

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track; call at the first frame of each video."""
        self.num_tracks = 0
        cap = self.init_capacity
        # host bookkeeping, one entry per slot
        self._slot_id = np.full(cap, -1, dtype=np.int64)
        self._slot_last = np.zeros(cap, dtype=np.int64)
        self._slot_exist = np.zeros(cap, dtype=np.int64)
        self._slot_alive = np.zeros(cap, dtype=bool)
        # device memory, allocated at the first birth
        self._embeds: Optional[Tensor] = None  # (S, L, C)
        self._scores: Optional[Tensor] = None  # (S, L)
        self._valid: Optional[Tensor] = None  # (S, L) bool
        self._momentum_embeds: Optional[Tensor] = None  # (S, C)
        self._labels: Optional[Tensor] = None  # (S,)
        self.backdrops: Optional[Tensor] = None

    @property
    def capacity(self) -> int:
        """Number of slots on the host side."""
        return len(self._slot_id)

    def _live_slots(self) -> np.ndarray:
        """Slots of the live tracks in creation (= id) order."""
        slots = np.nonzero(self._slot_alive)[0]
        return slots[np.argsort(self._slot_id[slots], kind='stable')]

    @property
    def empty(self) -> bool:
        return not self._slot_alive.any()

    @property
    def ids(self) -> List[int]:
        return self._slot_id[self._live_slots()].tolist()

    @property
    def exist_frames(self) -> List[int]:
        return self._slot_exist[self._live_slots()].tolist()

    @property
    def last_frames(self) -> List[int]:
        return self._slot_last[self._live_slots()].tolist()

    @property
    def num_memory_entries(self) -> int:
        """Stored embeddings over the live tracks (inspection only: one
        download)."""
        if self._valid is None or self.empty:
            return 0
        live = upload(self._live_slots(), self._valid.device)
        return int(self._valid[live].sum())

    def _all_memory_embeddings(self) -> Tensor:
        """``(S, C)`` memory embedding of every slot (dead slots: junk).

        The same arithmetic, row by row, as
        :meth:`IDOLTracker.memory_embeddings`.
        """
        if not self.long_match:
            return self._momentum_embeds
        # min_entries: a dead slot has no entry (its row is never read)
        return weighted_memory_embeddings(
            self._embeds,
            self._scores,
            self._valid,
            self.temporal_weight,
            min_entries=1.0)

    def memory_embeddings(self) -> Tensor:
        """``(T, C)`` memory embeddings of the live tracks in :attr:`ids`
        order (inspection only)."""
        if self.empty:
            raise RuntimeError('the tracker memory is empty')
        live = upload(self._live_slots(), self._embeds.device)
        return self._all_memory_embeddings()[live]

    # ------------------------------------------------------------------
    # the three steps of a frame
    # ------------------------------------------------------------------
    def similarities(self, embeds: Tensor) -> Optional[Tensor]:
        """``(n, S)`` raw similarities of detections to every slot, on the
        device (cosines for ``match_metric='cosine'``), or None before the
        first track exists. Read only the live slots' columns."""
        if self._embeds is None:
            return None
        memo = self._all_memory_embeddings()
        det = embeds.float()
        if self.match_metric == 'cosine':
            det = F.normalize(det, dim=1)
            memo = F.normalize(memo, dim=1)
        return det @ memo.t()

    def decide(self,
               frame_id: int,
               scores: np.ndarray,
               suppress: Optional[np.ndarray] = None,
               backdrop_ok: Optional[np.ndarray] = None,
               sims: Optional[np.ndarray] = None) -> TrackDecision:
        """Take the frame's decisions on the host and update the host
        bookkeeping (same rules and order as :meth:`IDOLTracker.track`).

        Args:
            frame_id (int): Frame index.
            scores (np.ndarray): ``(n,)`` float32 detection scores in
                descending order (the order every matrix below uses).
            suppress (np.ndarray, optional): ``(n, n)`` bool, mask IoU >
                ``mask_nms_thr``; None disables mask NMS and backdrops.
            backdrop_ok (np.ndarray, optional): ``(n, n)`` bool, mask IoU <
                ``nms_thr_post``.
            sims (np.ndarray, optional): ``(n, S')`` similarities to the
                slots (:meth:`similarities`; ``S' >= `` live slots' indices).

        Returns:
            TrackDecision: Ids and backdrops per detection, and the slot
            writes for :meth:`commit`.
        """
        n = len(scores)
        ids = np.full(n, -1, dtype=np.int64)
        backdrop = np.zeros(n, dtype=bool)
        if n == 0:
            dead = self._prune_host(frame_id)
            return TrackDecision(
                ids, backdrop, dead=dead, capacity=self.capacity)
        # 1. mask NMS
        if suppress is not None:
            keep = greedy_nms_from_iou(suppress.astype(np.float32), 0.5)
        else:
            keep = np.ones(n, dtype=bool)
        kept = np.nonzero(keep)[0]
        k_scores = scores[kept]
        # 2.-3. bi-softmax over the live tracks in creation order
        live = self._live_slots()
        if len(live) == 0:
            cols = np.full(len(kept), -1, dtype=np.int64)
            birth_thr = self.init_score_thr
        else:
            match = self._match_scores(
                np.ascontiguousarray(sims[np.ix_(kept, live)]))
            cols = greedy_assign(match, self._slot_exist[live],
                                 self.match_score_thr, self.frame_weight)
            birth_thr = self.addnew_score_thr
        # 4. births in score order
        k_ids = np.full(len(kept), -1, dtype=np.int64)
        matched = cols >= 0
        matched_slots = live[cols[matched]]
        k_ids[matched] = self._slot_id[matched_slots]
        born = (~matched) & (k_scores > np.float32(birth_thr))
        num_born = int(born.sum())
        k_ids[born] = np.arange(self.num_tracks, self.num_tracks + num_born)
        self.num_tracks += num_born
        if backdrop_ok is not None:
            for i in np.nonzero(k_ids < 0)[0]:
                if backdrop_ok[kept[i], kept[:i]].all():
                    backdrop[kept[i]] = True
        ids[kept] = k_ids
        # 5. bookkeeping: matched, born, dead
        self._slot_last[matched_slots] = frame_id
        self._slot_exist[matched_slots] += 1
        new_slots = self._allocate(num_born)
        self._slot_id[new_slots] = k_ids[born]
        self._slot_last[new_slots] = frame_id
        self._slot_exist[new_slots] = 1
        self._slot_alive[new_slots] = True
        dead = self._prune_host(frame_id)
        rows = np.concatenate([matched_slots, new_slots]).astype(np.int64)
        dets = np.concatenate([kept[matched], kept[born]]).astype(np.int64)
        reset = np.arange(len(rows)) >= len(matched_slots)
        return TrackDecision(ids, backdrop, rows, dets, reset, dead,
                             self.capacity)

    def _allocate(self, num: int) -> np.ndarray:
        """``num`` free slots (lowest first), doubling the capacity when
        needed."""
        free = np.nonzero(~self._slot_alive)[0]
        while len(free) < num:
            cap = self.capacity
            self._slot_id = np.concatenate(
                [self._slot_id,
                 np.full(cap, -1, dtype=np.int64)])
            for name in ('_slot_last', '_slot_exist'):
                setattr(
                    self, name,
                    np.concatenate(
                        [getattr(self, name),
                         np.zeros(cap, np.int64)]))
            self._slot_alive = np.concatenate(
                [self._slot_alive, np.zeros(cap, dtype=bool)])
            free = np.nonzero(~self._slot_alive)[0]
        return free[:num].astype(np.int64)

    def _prune_host(self, frame_id: int) -> np.ndarray:
        """Kill tracks unmatched for ``memo_tracklet_frames`` frames."""
        dead = self._slot_alive & (
            frame_id - self._slot_last >= self.memo_tracklet_frames)
        dead = np.nonzero(dead)[0].astype(np.int64)
        self._slot_alive[dead] = False
        self._slot_id[dead] = -1
        return dead

    def commit(self, decision: TrackDecision, embeds: Tensor, scores: Tensor,
               labels: Optional[Tensor]) -> None:
        """Apply a decision to the device memory (no synchronisation).

        Args:
            decision (TrackDecision): From :meth:`decide`.
            embeds (Tensor): ``(n, C)`` embeddings of the detections in the
                order :meth:`decide` saw them.
            scores (Tensor): ``(n,)`` their scores.
            labels (Tensor, optional): ``(n,)`` their labels.
        """
        num_rows, num_dead = len(decision.rows), len(decision.dead)
        if num_rows == 0 and num_dead == 0:
            return
        device = embeds.device
        self._ensure_capacity(decision.capacity, embeds.shape[1], device)
        index = upload(
            np.concatenate([
                decision.rows, decision.dets,
                decision.reset.astype(np.int64), decision.dead
            ]), device)
        rows = index[:num_rows]
        dets = index[num_rows:2 * num_rows]
        reset = index[2 * num_rows:3 * num_rows].bool()
        if num_rows:
            e_new = embeds[dets].float()
            s_new = scores[dets].float()
            r3 = reset[:, None, None]
            r2 = reset[:, None]
            old_e = torch.where(r3, 0.0, self._embeds[rows])
            old_s = torch.where(r2, 0.0, self._scores[rows])
            old_v = self._valid[rows] & ~r2
            self._embeds[rows] = torch.cat([old_e[:, 1:], e_new[:, None]], 1)
            self._scores[rows] = torch.cat([old_s[:, 1:], s_new[:, None]], 1)
            self._valid[rows] = torch.cat(
                [old_v[:, 1:], old_v.new_ones(num_rows, 1)], 1)
            m = self.memo_momentum
            self._momentum_embeds[rows] = torch.where(
                r2, e_new, (1 - m) * self._momentum_embeds[rows] + m * e_new)
            if labels is not None:
                self._labels[rows] = labels[dets].to(self._labels.dtype)
            else:
                self._labels[rows] = -1
        if num_dead:
            self._valid[index[3 * num_rows:]] = False

    def _ensure_capacity(self, capacity: int, channels: int,
                         device: torch.device) -> None:
        """Allocate or grow the device slots to ``capacity`` (zeros)."""
        current = 0 if self._embeds is None else self._embeds.shape[0]
        if capacity <= current:
            return
        L = self.memory_len
        grown = dict(
            _embeds=torch.zeros(capacity, L, channels, device=device),
            _scores=torch.zeros(capacity, L, device=device),
            _valid=torch.zeros(capacity, L, dtype=torch.bool, device=device),
            _momentum_embeds=torch.zeros(capacity, channels, device=device),
            _labels=torch.full((capacity, ),
                               -1,
                               dtype=torch.long,
                               device=device))
        for name, tensor in grown.items():
            if current:
                tensor[:current] = getattr(self, name)
            setattr(self, name, tensor)

    # ------------------------------------------------------------------
    # drop-in API
    # ------------------------------------------------------------------
    @torch.no_grad()
    def track(self,
              frame_id: int,
              embeds: Tensor,
              scores: Tensor,
              labels: Optional[Tensor] = None,
              masks: Optional[Tensor] = None,
              class_scores: Optional[Tensor] = None) -> Tensor:
        """Same contract as :meth:`IDOLTracker.track`, with one
        device-to-host copy (mask-NMS flags, similarities and scores)."""
        del class_scores
        device = scores.device
        n = scores.shape[0]
        order = scores.argsort(descending=True, stable=True)
        s_embeds = embeds[order].float()
        s_scores = scores[order].float()
        blocks = [s_scores[:, None], order[:, None].float()]
        if masks is not None and n:
            iou = mask_iou_matrix(masks[order], self.mask_thr)
            suppress_t = (iou > self.mask_nms_thr).float()
            code = suppress_t + 2.0 * (iou < self.nms_thr_post).float()
            blocks.append(code)
        sims = self.similarities(s_embeds) if n else None
        if sims is not None:
            blocks.append(sims)
        host = torch.cat(blocks, 1).cpu().numpy()
        host_scores = np.ascontiguousarray(host[:, 0])
        order_np = host[:, 1].astype(np.int64)
        suppress = backdrop_ok = None
        col = 2
        if masks is not None and n:
            code = host[:, 2:2 + n].astype(np.int64)
            suppress, backdrop_ok = (code & 1) > 0, (code & 2) > 0
            col += n
        decision = self.decide(frame_id, host_scores, suppress, backdrop_ok,
                               host[:, col:] if sims is not None else None)
        s_labels = labels[order] if labels is not None else None
        self.commit(decision, s_embeds, s_scores, s_labels)
        ids = np.full(n, -1, dtype=np.int64)
        ids[order_np] = decision.ids
        back = np.zeros(n, dtype=bool)
        back[order_np] = decision.backdrops
        self.backdrops = upload(back, device)
        return upload(ids, device)
