# Copyright (c) mmookd contributors. All rights reserved.
"""The teacher's aggregation module: VITA's object token association
(OOKD paper, Sec. 3.2, Fig. 3c; docs/hyperparameters.md §12-14, §18).

Frame queries (T, fQ, D) of a frozen online model -> object encoder ->
object decoder -> N offline queries ``f_off`` per clip, one set per decoder
layer. Besides the queries it returns, per offline query and frame, a soft
association over that frame's queries: the offline model decodes ``f_off``
with the *frame* model's heads (OOKD), and those heads need a per-frame
reference box / point (IDOL predicts boxes relative to a reference and uses
the reference as the origin of the dynamic mask head's relative
coordinates, §3-4). The association is read out with two linear
embeddings, the same construction as VITA's similarity embeddings
``sim_embed_frame`` / ``sim_embed_clip`` (§14), softmax-normalised
over each frame's queries; it is trained end to end by the box and mask
losses through those references and, like VITA's similarity loss, can be
supervised directly (``OfflineTeacher(loss_assoc=...)``).

``absent_slot=True`` (our design, off by default): the softmax over a
frame's queries gets one more slot, "not in this frame", whose logit is
fixed at 0, the decision threshold of VITA's similarity loss (a frame token
of the query's instance scores above 0, any other below). The weight left
to the frame tokens is the query's *presence* in that frame; the teacher
gates the query's mask with it, so a query can say "not here" instead of
being forced onto some frame query where its instance is absent. The
association over the tokens, renormalised, still gives the reference.

``query_readout=True`` (our design, off by default): each offline query is
returned as the association-weighted mean of the frame queries it picks
(over the valid frames) plus a LayerScale-gated decoder output (gate 0 at
init). The frozen frame heads then decode a vector from the space they
were trained on from the first iteration, and the decoder learns which
object to pick and what to add from the clip context.

``frame_readout=True`` (our design, with ``query_readout``): the frame
heads decode the query in frame ``t`` from that frame's read-out (the
association-weighted frame queries of frame ``t``, renormalised over its
tokens) plus the same gated decoder output, instead of the clip mean: an
object's appearance and shape change over a clip, and one time-invariant
vector decoding every frame loses what the frame model knew about each
frame. Class and embedding (the distilled ``f_off``) stay the clip-level
read-out; boxes and masks of frame ``t`` come from its frame-wise query
(``per_frame_queries``).
"""
from typing import Dict, Optional

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['VITAAggregator']


@MODELS.register_module()
class VITAAggregator(BaseModule):
    """Object encoder + object decoder over the frame queries of a clip.

    Which frame queries are fed (``frame_query_select``):

    * ``'all'`` (default): every query of every frame, as VITA does
      (§12: no score-based filtering). IDOL's one-to-many training
      leaves several confident queries per object and low-score queries
      that still describe partially visible or small instances; score
      filtering on a frozen detector would silently remove exactly the
      hard instances the offline model is meant to recover, and the
      ``fq_pos`` slot embedding keeps its meaning. Cost: ``T x fQ`` tokens
      (a 6-frame window of IDOL's 300 queries is 1800 tokens).
    * ``'topk'``: the ``topk`` queries of each frame by max class score
      (``frame_scores`` needed), for long videos or cheaper training.
      Their ``fq_pos`` is still indexed by the original query slot, and the
      association is scattered back to all ``fQ`` queries (zeros for the
      dropped ones).

    Args:
        embed_dims (int): Channels of the frame queries. Defaults to 256.
        num_frame_queries (int): Frame queries per frame ``fQ`` of the frame
            model (IDOL: 300). Defaults to 300.
        num_queries (int): Offline (object) queries ``N``. Defaults to 100.
        encoder (dict): :class:`ObjectTokenEncoder` config (``embed_dims``
            filled in). Defaults to VITA's: 6 layers, window 6, 8 heads,
            FFN 2048, dropout 0.
        decoder (dict): :class:`ObjectTokenDecoder` config (``embed_dims``,
            ``num_queries``, ``num_frame_queries`` filled in). Defaults to
            VITA's: 3 layers, 8 heads, FFN 2048, dropout 0.
        frame_query_select (str): ``'all'`` or ``'topk'``.
        topk (int, optional): Queries per frame for ``'topk'``.
        query_readout (bool): Offline query = association read-out of the
            frame queries + gated decoder output (module docstring).
            Defaults to False (VITA: the decoder output).
        frame_readout (bool): Also return frame-wise read-outs that decode
            boxes and masks (module docstring); needs ``query_readout``.
            Defaults to False.
        absent_slot (bool): Add the "not in this frame" slot to the
            association (module docstring). Defaults to False.
        init_cfg (dict, optional): Initialization config.
    """

    #: This aggregator learns the association, it needs no GT at inference.
    needs_token_targets = False

    def __init__(self,
                 embed_dims: int = 256,
                 num_frame_queries: int = 300,
                 num_queries: int = 100,
                 encoder: ConfigType = dict(
                     type='ObjectTokenEncoder',
                     num_layers=6,
                     window_size=6,
                     num_heads=8,
                     feedforward_channels=2048,
                     dropout=0.0),
                 decoder: ConfigType = dict(
                     type='ObjectTokenDecoder',
                     num_layers=3,
                     num_heads=8,
                     feedforward_channels=2048,
                     dropout=0.0),
                 frame_query_select: str = 'all',
                 topk: Optional[int] = None,
                 query_readout: bool = False,
                 frame_readout: bool = False,
                 absent_slot: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if frame_query_select not in ('all', 'topk'):
            raise ValueError("frame_query_select must be 'all' or 'topk', "
                             f'got {frame_query_select!r}')
        if frame_query_select == 'topk' and not (topk and topk > 0):
            raise ValueError("frame_query_select='topk' needs topk > 0")
        if frame_readout and not query_readout:
            raise ValueError('frame_readout=True needs query_readout=True '
                             '(the frame-wise read-out refines the clip one)')
        self.embed_dims = embed_dims
        self.num_frame_queries = num_frame_queries
        self.num_queries = num_queries
        self.frame_query_select = frame_query_select
        self.topk = topk
        self.encoder = MODELS.build(
            encoder, default_args=dict(embed_dims=embed_dims))
        self.decoder = MODELS.build(
            decoder,
            default_args=dict(
                embed_dims=embed_dims,
                num_queries=num_queries,
                num_frame_queries=num_frame_queries))
        # VITA's sim_embed_frame / sim_embed_clip (§14)
        self.assoc_frame_proj = nn.Linear(embed_dims, embed_dims)
        self.assoc_query_proj = nn.Linear(embed_dims, embed_dims)
        self.query_readout = query_readout
        self.frame_readout = frame_readout
        self.absent_slot = absent_slot
        if query_readout:
            # LayerScale gate of the decoder output, 0 at init
            self.readout_gate = nn.Parameter(torch.zeros(embed_dims))

    def init_weights(self) -> None:
        """Xavier-uniform association projections, zero biases."""
        super().init_weights()
        for layer in (self.assoc_frame_proj, self.assoc_query_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def select_frame_queries(self, frame_queries: Tensor,
                             frame_scores: Optional[Tensor]):
        """Frame queries fed to the encoder and their slots.

        Returns:
            tuple: (B, T, fQ', D) queries and (B, T, fQ') long slot indices
            (None for ``'all'``).
        """
        if self.frame_query_select == 'all':
            return frame_queries, None
        if frame_scores is None:
            raise ValueError("frame_query_select='topk' needs frame_scores")
        if frame_scores.dim() == 4:
            frame_scores = frame_scores.max(-1)[0]
        k = min(self.topk, frame_queries.size(2))
        slots = frame_scores.topk(k, dim=-1)[1]  # (B, T, k)
        index = slots[..., None].expand(-1, -1, -1, frame_queries.size(-1))
        selected = frame_queries.gather(2, index)
        return selected, slots

    def associate(self,
                  queries: Tensor,
                  memory: Tensor,
                  padding_mask: Optional[Tensor] = None) -> Tensor:
        """Per-frame soft association of offline queries to frame tokens.

        Args:
            queries (Tensor): (L, B, N, D) offline queries.
            memory (Tensor): (B, T, fQ', D) encoded frame tokens.
            padding_mask (Tensor, optional): (B, T), True = padded frame.

        Returns:
            Tensor: (L, B, N, T, fQ') log-weights (log-softmax over each
            frame's queries, and the absent slot if any, which is left
            out; uniform on padded frames).
        """
        q = self.assoc_query_proj(queries)
        k = self.assoc_frame_proj(memory)
        logits = torch.einsum('lbnd,btqd->lbntq', q, k) * self.sim_scale
        if padding_mask is not None:
            pad = padding_mask.bool()[None, :, None, :, None]
            logits = logits.masked_fill(pad, 0.0)
        if not self.absent_slot:
            return logits.log_softmax(-1)
        null = logits.new_zeros(logits.shape[:-1] + (1, ))
        if padding_mask is not None:  # padded frames: tokens only
            null = null.masked_fill(pad, float('-inf'))
        return torch.cat([logits, null], -1).log_softmax(-1)[..., :-1]

    @property
    def sim_scale(self) -> float:
        """Scale of the association logits ``q . k`` (1 / sqrt(D))."""
        return self.embed_dims**-0.5

    def similarity(self, embeds: Tensor, others: Tensor) -> Tensor:
        """(P, D) x (R, D) -> (P, R) association logits between projected
        embeddings, as :meth:`associate` scores a query against a frame
        token (VITA's similarity-loss logits)."""
        return embeds @ others.t() * self.sim_scale

    def forward(self,
                frame_queries: Tensor,
                frame_scores: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None,
                token_targets: Optional[Tensor] = None,
                last_layer_only: bool = False) -> Dict[str, Tensor]:
        """Frame queries of a batch of clips -> offline queries.

        Args:
            frame_queries (Tensor): (B, T, fQ, D) last-layer queries of the
                frame model.
            frame_scores (Tensor, optional): (B, T, fQ) or (B, T, fQ, K)
                class logits / scores of the frame queries (``'topk'``).
            padding_mask (Tensor, optional): (B, T) bool, True = padded
                frame.
            token_targets (Tensor, optional): Ignored (interface shared with
                :class:`TokenAverageAggregator`).
            last_layer_only (bool): Return only the last decoder layer
                (inference). Defaults to False.

        Returns:
            dict: ``queries`` (L, B, N, D) offline queries of every decoder
            layer (L = 1 with ``last_layer_only``); ``frame_assoc``
            (L, B, N, T, fQ) per-frame association weights over all ``fQ``
            frame queries and ``frame_assoc_log`` their logarithm (``-inf``
            on slots ``'topk'`` dropped); ``presence`` (L, B, N, T) the
            weight of the frame tokens (1 without ``absent_slot``);
            ``sim_query`` (L, B, N, D) and ``sim_frame`` (B, T, fQ', D)
            the projected embeddings of the association (VITA's similarity
            loss) with ``sim_slots`` (B, T, fQ') their frame-query slots;
            ``query_mask`` (B, N) bool, all True; with ``frame_readout``
            also ``per_frame_queries`` (L, B, N, T, D).
        """
        del token_targets
        bs, t, fq, _ = frame_queries.shape
        tokens, slots = self.select_frame_queries(frame_queries, frame_scores)
        memory = self.encoder(tokens, padding_mask)
        queries = self.decoder(memory, padding_mask, slots)
        if last_layer_only:
            queries = queries[-1:]
        sim_query = self.assoc_query_proj(queries)
        log_assoc = self.associate(queries, memory, padding_mask)
        presence = log_assoc.exp().sum(-1)
        per_frame = None
        if self.frame_readout:
            per_frame = self.frame_wise_readout(log_assoc.exp(), tokens) + (
                self.readout_gate * queries)[..., None, :]
        if self.query_readout:
            queries = self.readout(log_assoc.exp(), tokens, padding_mask) + (
                self.readout_gate * queries)
        if slots is None:
            sim_slots = torch.arange(
                fq, device=frame_queries.device).expand(bs, t, fq)
        else:
            sim_slots = slots
        if slots is not None:
            full = log_assoc.new_full(log_assoc.shape[:-1] + (fq, ),
                                      float('-inf'))
            index = slots[None, :, None].expand_as(log_assoc)
            log_assoc = full.scatter(-1, index, log_assoc)
        query_mask = queries.new_ones((bs, queries.size(2)), dtype=torch.bool)
        out = dict(
            queries=queries,
            frame_assoc=log_assoc.exp(),
            frame_assoc_log=log_assoc,
            presence=presence,
            sim_query=sim_query,
            sim_frame=self.assoc_frame_proj(memory),
            sim_slots=sim_slots,
            query_mask=query_mask)
        if per_frame is not None:
            out['per_frame_queries'] = per_frame
        return out

    @staticmethod
    def frame_wise_readout(assoc: Tensor, tokens: Tensor) -> Tensor:
        """Each frame's association-weighted frame queries, renormalised
        over the frame's tokens (the absent slot left out): (L, B, N, T,
        fQ') x (B, T, fQ', D) -> (L, B, N, T, D)."""
        norm = assoc / assoc.sum(-1, keepdim=True).clamp(min=1e-30)
        return torch.einsum('lbntq,btqd->lbntd', norm, tokens)

    @staticmethod
    def readout(assoc: Tensor,
                tokens: Tensor,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Association-weighted mean of the (raw) frame queries over the
        valid frames: (L, B, N, T, fQ') x (B, T, fQ', D) -> (L, B, N, D).
        Each frame counts with the query's presence in it (the weight of
        its tokens), so frames where it says "absent" add nothing."""
        valid = tokens.new_ones(tokens.shape[:2])
        if padding_mask is not None:
            valid = (~padding_mask.bool()).to(tokens.dtype)
        weights = valid / valid.sum(1, keepdim=True).clamp(min=1)
        # presence-weighted mean; equals the plain one when presence is 1
        norm = torch.einsum('lbntq,bt->lbn', assoc, weights).clamp(min=1e-6)
        # one contraction: no (L, B, N, T, D) intermediate on long videos
        return torch.einsum('lbntq,bt,btqd->lbnd', assoc, weights,
                            tokens) / norm[..., None]
