# Copyright (c) mmookd contributors. All rights reserved.
"""VITA's object decoder: video queries over encoded frame tokens
(docs/hyperparameters.md §14).

OOKD (OOKD paper, Sec. 3.2, Fig. 3c): "the augmented instance
features and N learnable object queries are passed through the object
decoder to embed the offline instance information into the queries". Each
layer is cross-attention of the object queries to *all* encoded frame
tokens of the clip (no masked attention), then self-attention among the
object queries, then an FFN, all post-norm; a shared output LayerNorm is
applied to every layer's output for deep supervision.
"""
from typing import Optional

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .object_encoder import TokenAttention

__all__ = ['ObjectDecoderLayer', 'ObjectTokenDecoder']


class ObjectDecoderLayer(BaseModule):
    """Cross-attention -> self-attention -> FFN, post-norm (§14).

    Args:
        embed_dims (int): Channels.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden channels.
        dropout (float): Dropout of attention and FFN.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 feedforward_channels: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = TokenAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.self_attn = TokenAttention(embed_dims, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=dropout,
            add_identity=True)
        self.norm3 = nn.LayerNorm(embed_dims)

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                memory_pos: Tensor, memory_mask: Optional[Tensor]) -> Tensor:
        """(B, N, D) queries attend to (B, S, D) memory -> (B, N, D)."""
        x = query + self.drop(
            self.cross_attn(query + query_pos, memory + memory_pos, memory,
                            memory_mask))
        x = self.norm1(x)
        qk = x + query_pos
        x = self.norm2(x + self.drop(self.self_attn(qk, qk, x)))
        return self.norm3(self.ffn(x))


@MODELS.register_module()
class ObjectTokenDecoder(BaseModule):
    """VITA's object decoder with ``N`` learnable object (video) queries.

    Object queries are ``query_feat`` (content) + ``query_embed``
    (positional, added to queries and self-attention keys). The key
    positional embedding of a frame token is ``fq_pos[slot]``, a learnable
    ``Embedding(fQ, D)`` indexed by the frame-query slot the token comes
    from (the same for every frame, §14): it tells the decoder which
    of the frame detector's learned queries produced a token, not when.

    Args:
        embed_dims (int): Channels. Defaults to 256.
        num_queries (int): Object queries ``N``. Defaults to 100 (VITA).
        num_frame_queries (int): Frame-query slots ``fQ`` of the frame
            detector (IDOL: 300; §12). Defaults to 300.
        num_layers (int): Decoder layers. Defaults to 3 (§14).
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden channels. Defaults to 2048.
        dropout (float): Dropout. Defaults to 0.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_queries: int = 100,
                 num_frame_queries: int = 300,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_queries = num_queries
        self.num_frame_queries = num_frame_queries
        self.query_feat = nn.Embedding(num_queries, embed_dims)
        self.query_embed = nn.Embedding(num_queries, embed_dims)
        self.fq_pos = nn.Embedding(num_frame_queries, embed_dims)
        self.layers = nn.ModuleList([
            ObjectDecoderLayer(embed_dims, num_heads, feedforward_channels,
                               dropout) for _ in range(num_layers)
        ])
        self.decoder_norm = nn.LayerNorm(embed_dims)

    def init_weights(self) -> None:
        """Xavier-uniform for the layers' matrices (VITA); the embeddings
        keep ``nn.Embedding``'s normal init."""
        super().init_weights()
        for p in self.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self,
                memory: Tensor,
                padding_mask: Optional[Tensor] = None,
                slot_inds: Optional[Tensor] = None) -> Tensor:
        """Decode the object queries of a batch of clips.

        Args:
            memory (Tensor): (B, T, fQ', D) encoded frame tokens.
            padding_mask (Tensor, optional): (B, T) bool, True = padded
                frame (its tokens are not attended to).
            slot_inds (Tensor, optional): (B, T, fQ') long frame-query slot
                of every token (when a subset of the frame queries is fed);
                None = token ``q`` of every frame is slot ``q``.

        Returns:
            Tensor: (num_layers, B, N, D) outputs of every layer after the
            shared output LayerNorm.
        """
        bs, t, q, d = memory.shape
        if slot_inds is None:
            if q > self.num_frame_queries:
                raise ValueError(
                    f'{q} frame queries per frame but fq_pos has '
                    f'{self.num_frame_queries} slots (num_frame_queries)')
            pos = self.fq_pos.weight[:q][None, None].expand(bs, t, q, d)
        else:
            pos = self.fq_pos(slot_inds)
        memory = memory.reshape(bs, t * q, d)
        pos = pos.reshape(bs, t * q, d)
        mask = None
        if padding_mask is not None and bool(padding_mask.any()):
            mask = (~padding_mask.bool()).repeat_interleave(q, 1)
            mask = mask[:, None, None]  # (B, 1, 1, T * fQ')
        query = self.query_feat.weight[None].expand(bs, -1, -1)
        query_pos = self.query_embed.weight[None].expand(bs, -1, -1)
        outputs = []
        for layer in self.layers:
            query = layer(query, query_pos, memory, pos, mask)
            outputs.append(self.decoder_norm(query))
        return torch.stack(outputs)
