# Copyright (c) mmookd contributors. All rights reserved.
"""MinVIS's threshold-free Hungarian tracker (docs/hyperparameters.md §19).

Huang et al., "MinVIS: A Minimal Video Instance Segmentation Framework
without Video-based Training", NeurIPS 2022: query embeddings of a per-frame
query-based segmenter are associated between consecutive frames only, by
Hungarian matching on ``1 - cosine``. It needs no learned association and no
thresholds, so it is a baseline for any query-based detector (also for a
VITA-style frame detector), §19.
"""
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ['MinVISTracker']


@MODELS.register_module()
class MinVISTracker:
    """Hungarian query association between consecutive frames (§19).

    1. The first frame after :meth:`reset` defines ``Q`` track slots (slot
       ``k`` = query ``k``; ids ``0..Q-1``).
    2. For every later frame: cost = ``1 - cos(current, reference)``,
       solved with ``scipy.optimize.linear_sum_assignment``; each current
       query takes its slot's id. The reference for the next frame is the
       current embeddings permuted into slot order, i.e. **only the
       previous frame** (no memory bank).

    Same call signature as :class:`IDOLTracker`, so it can replace it from a
    config, but note what differs:

    * it expects **all ``Q`` queries every frame, unfiltered** (no score
      threshold, no NMS): every query is a track for the whole video, so
      no births, deaths or -1 ids occur when ``Q`` is constant; ``scores``,
      ``labels``, ``masks`` and ``class_scores`` are ignored;
    * video-level scoring is the caller's: MinVIS averages per-frame
      *logits* per slot, then applies softmax (K + 1, drops no-object) and
      keeps the top-10 (slot, class) pairs, unlike IDOL's mean of
      probabilities with a 0.05 threshold and noise filter.
      :class:`VideoTrackAssembler` averages whatever scores it is given, so
      with ``noise_filter=False`` and ``max_per_video=10`` it gives
      MinVIS-style top-10 output on mean probabilities (not on softmaxed
      mean logits).

    If a frame has fewer queries than slots, unassigned slots keep their
    previous reference embedding; if it has more, the surplus queries get
    id -1 (not output). Embeddings are L2-normalised with ``eps`` and
    non-finite cosines are set to 0 (as DVIS does, §19).

    Args:
        eps (float): Normalisation epsilon. Defaults to 1e-6.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps
        self.reset()

    def reset(self) -> None:
        """Forget the reference; call at the first frame of every video."""
        self._ref_embeds: Optional[Tensor] = None  # (Q, C), slot order
        self.last_permutation: Optional[Tensor] = None

    @property
    def empty(self) -> bool:
        """Whether no slot is defined yet."""
        return self._ref_embeds is None

    @property
    def num_tracks(self) -> int:
        """Number of slots ``Q``."""
        return 0 if self._ref_embeds is None else self._ref_embeds.shape[0]

    @torch.no_grad()
    def track(self,
              frame_id: int,
              embeds: Tensor,
              scores: Optional[Tensor] = None,
              labels: Optional[Tensor] = None,
              masks: Optional[Tensor] = None,
              class_scores: Optional[Tensor] = None) -> Tensor:
        """Assign each query of the frame to a slot.

        Args:
            frame_id (int): Frame index (unused; kept for API parity).
            embeds (Tensor): ``(Q, C)`` query embeddings of *all* queries
                (Mask2Former ``decoder_norm`` outputs in MinVIS).
            scores, labels, masks, class_scores: Ignored.

        Returns:
            Tensor: ``(Q,)`` long slot ids on ``embeds.device``, in input
            order. :attr:`last_permutation` holds, per slot, the index of
            the current query assigned to it (-1 if none), i.e. the
            permutation that aligns this frame's outputs to slot order.
        """
        del frame_id, scores, labels, masks, class_scores
        device = embeds.device
        embeds = embeds.float()
        n = embeds.shape[0]
        if self._ref_embeds is None:
            self._ref_embeds = embeds.clone()
            self.last_permutation = torch.arange(n, device=device)
            return torch.arange(n, device=device)
        cur = F.normalize(embeds, dim=1, eps=self.eps)
        ref = F.normalize(self._ref_embeds, dim=1, eps=self.eps)
        cost = 1.0 - cur @ ref.t()  # (n, Q)
        cost = torch.nan_to_num(cost, nan=1.0, posinf=1.0, neginf=1.0)
        query_idx, slot_idx = linear_sum_assignment(cost.cpu().numpy())
        ids = np.full(n, -1, dtype=np.int64)
        ids[query_idx] = slot_idx
        perm = np.full(self.num_tracks, -1, dtype=np.int64)
        perm[slot_idx] = query_idx
        slot_t = torch.from_numpy(slot_idx).to(device)
        query_t = torch.from_numpy(query_idx).to(device)
        ref_embeds = self._ref_embeds.clone()
        ref_embeds[slot_t] = embeds[query_t]
        self._ref_embeds = ref_embeds
        self.last_permutation = torch.from_numpy(perm).to(device)
        return torch.from_numpy(ids).to(device)
