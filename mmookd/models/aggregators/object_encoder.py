# Copyright (c) mmookd contributors. All rights reserved.
"""VITA's object encoder over frame queries (docs/hyperparameters.md §13).

In OOKD (OOKD paper, Sec. 3.2, Fig. 3c) the "object encoder"
"builds intercommunication of queries along the temporal axis, employing
self-attention modules": the frame queries of every frame of a clip are
tokens (``T x fQ``), with no positional embedding, and each layer is
self-attention + FFN (post-norm). Attention is restricted to windows of
``W`` frames; at inference odd layers use windows shifted by ``ceil(W / 2)``
frames so that information crosses window borders, as in Swin (§13).

The attention is a small module on top of
:func:`torch.nn.functional.scaled_dot_product_attention` rather than
:class:`torch.nn.MultiheadAttention`: window masks are block masks shared by
all heads, which SDPA takes as a broadcast ``(B, 1, L, S)`` tensor, while
``nn.MultiheadAttention`` copies them per head (with IDOL's 300 frame
queries a 6-frame window already has 1800 tokens) and materialises the
attention weights.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['TokenAttention', 'ObjectEncoderLayer', 'ObjectTokenEncoder']


class TokenAttention(BaseModule):
    """Multi-head attention with an optional boolean attention mask.

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads.
        dropout (float): Dropout on the attention weights. Defaults to 0
            (VITA, §13).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def init_weights(self) -> None:
        """Xavier-uniform projections, zero biases (VITA's init)."""
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self,
                query: Tensor,
                key: Tensor,
                value: Tensor,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Attend ``query`` (B, Lq, D) to ``key`` / ``value`` (B, Lk, D).

        Args:
            attn_mask (Tensor, optional): Boolean, broadcastable to
                (B, num_heads, Lq, Lk); True = may attend. Every query row
                must allow at least one key.

        Returns:
            Tensor: (B, Lq, D).
        """
        b, lq, _ = query.shape
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(query)),
            self._heads(self.k_proj(key)),
            self._heads(self.v_proj(value)),
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, -1))


class ObjectEncoderLayer(BaseModule):
    """Self-attention + FFN, post-norm (VITA's encoder layer, §13).

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden channels.
        dropout (float): Dropout of attention and FFN.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 feedforward_channels: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = TokenAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=dropout,
            add_identity=True)
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        """(B, L, D) tokens -> (B, L, D)."""
        x = self.norm1(x + self.drop(self.self_attn(x, x, x, attn_mask)))
        return self.norm2(self.ffn(x))


@MODELS.register_module()
class ObjectTokenEncoder(BaseModule):
    """VITA's object encoder: windowed self-attention over frame queries.

    Tokens are the ``T x fQ`` frame queries of a clip after an input
    projection (Linear D -> D, VITA's ``ENFORCE_INPUT_PROJ``), without any
    positional or temporal embedding (§13). Layer ``i`` attends within
    windows of ``window_size`` consecutive frames (all their queries):

    * ``T`` is padded to a multiple of ``W`` with dummy frames that are
      never attended to (nor are frames flagged in ``padding_mask``);
    * with ``shift`` (default: at inference only, as VITA; training clips
      are shorter than a window anyway) the odd layers roll the time axis by
      ``ceil(W / 2)`` frames, attend within the rolled windows while a mask
      blocks attention between the frames that were wrapped around from the
      end and the others, and roll back (Swin-style). With a single window
      a shift would only cut that window in two, so it is skipped (as Swin
      does when the input fits one window);
    * ``window_size=0`` is global attention over all frames.

    Args:
        embed_dims (int): Channels of the frame queries. Defaults to 256.
        num_layers (int): Encoder layers. Defaults to 6 (§13).
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden channels. Defaults to 2048.
        dropout (float): Dropout. Defaults to 0.
        window_size (int): Window length ``W`` in frames; 0 = global.
            Defaults to 6 (VITA's ENC_WINDOW_SIZE for VIS).
        input_proj (bool): Linear input projection. Defaults to True.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_layers: int = 6,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.0,
                 window_size: int = 6,
                 input_proj: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0, got {window_size}')
        self.embed_dims = embed_dims
        self.window_size = window_size
        self.input_proj = nn.Linear(embed_dims,
                                    embed_dims) if input_proj else None
        self.layers = nn.ModuleList([
            ObjectEncoderLayer(embed_dims, num_heads, feedforward_channels,
                               dropout) for _ in range(num_layers)
        ])

    def init_weights(self) -> None:
        """Xavier-uniform for every matrix (VITA), zero projection bias."""
        super().init_weights()
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if self.input_proj is not None:
            nn.init.zeros_(self.input_proj.bias)

    @staticmethod
    def shift_size(window_size: int) -> int:
        """Frames the odd layers roll by at inference: ``ceil(W / 2)``."""
        return int(math.ceil(window_size / 2))

    @staticmethod
    def window_attn_mask(padding_mask: Tensor, window_size: int,
                         shift: int) -> Optional[Tensor]:
        """Frame-level attention mask of every window.

        Args:
            padding_mask (Tensor): (B, Tp) bool, True = padded frame, in the
                *original* (un-rolled) frame order; ``Tp`` is a multiple of
                ``window_size``.
            window_size (int): ``W``.
            shift (int): Roll of the time axis (0 = unshifted). The rolled
                position ``p`` holds the original frame ``(p - shift) % Tp``.

        Returns:
            Tensor | None: (B * Tp / W, W, W) bool, True = frame ``i`` of the
            window may attend to frame ``j``: ``j`` is a real frame and
            ``i``, ``j`` are on the same side of the wrapped boundary; the
            diagonal is always allowed so that no row is empty (only padded
            query frames can lack other keys; their outputs are dropped).
            None when nothing is masked.
        """
        bs, tp = padding_mask.shape
        if shift == 0 and not bool(padding_mask.any()):
            return None
        device = padding_mask.device
        pos = torch.arange(tp, device=device)
        orig = (pos - shift) % tp
        wrapped = (orig >= tp - shift).view(-1, window_size)  # (nW, W)
        same_side = wrapped[:, :, None] == wrapped[:, None, :]
        key_real = ~padding_mask[:, orig].view(bs, -1, 1, window_size)
        allowed = same_side[None] & key_real
        allowed = allowed | torch.eye(
            window_size, dtype=torch.bool, device=device)
        return allowed.flatten(0, 1)

    def forward(self,
                tokens: Tensor,
                padding_mask: Optional[Tensor] = None,
                shift: Optional[bool] = None) -> Tensor:
        """Encode the frame queries of a batch of clips.

        Args:
            tokens (Tensor): (B, T, fQ, D) frame queries.
            padding_mask (Tensor, optional): (B, T) bool, True = padded
                frame (clips of different lengths in one batch).
            shift (bool, optional): Shifted windows on odd layers. Defaults
                to None = ``not self.training`` (§13).

        Returns:
            Tensor: (B, T, fQ, D) encoded tokens (padded frames' outputs are
            meaningless).
        """
        bs, t, q, d = tokens.shape
        shift = (not self.training) if shift is None else shift
        x = self.input_proj(tokens) if self.input_proj is not None else tokens
        w = self.window_size if self.window_size > 0 else t
        tp = int(math.ceil(t / w)) * w
        pad = tokens.new_zeros((bs, tp), dtype=torch.bool)
        if padding_mask is not None:
            pad[:, :t] = padding_mask.bool()
        pad[:, t:] = True
        x = F.pad(x, (0, 0, 0, 0, 0, tp - t))
        num_windows = tp // w
        can_shift = shift and self.window_size > 0 and num_windows > 1
        masks = {}
        for i, layer in enumerate(self.layers):
            s = self.shift_size(w) if can_shift and i % 2 == 1 else 0
            if s not in masks:
                mask = self.window_attn_mask(pad, w, s)
                if mask is not None:
                    # frame-level -> token-level, shared by all heads
                    mask = mask.repeat_interleave(q, 1)
                    mask = mask.repeat_interleave(q, 2)[:, None]
                masks[s] = mask
            if s:
                x = torch.roll(x, s, dims=1)
            x = layer(x.reshape(bs * num_windows, w * q, d), masks[s])
            x = x.view(bs, tp, q, d)
            if s:
                x = torch.roll(x, -s, dims=1)
        return x[:, :t]
