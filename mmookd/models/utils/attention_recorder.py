# Copyright (c) mmookd contributors. All rights reserved.
"""Recorders that expose intermediate tensors of a model while active.

docs/companion_losses.md, "Capture mechanism": mmcv's
``MultiScaleDeformableAttention`` keeps its sampling offsets and attention
weights as local variables. The :class:`DeformableAttentionRecorder` recovers
them without touching the model's code: forward hooks on its
``sampling_offsets`` and ``attention_weights`` Linear layers (outputs, the
latter pre-softmax), a forward pre-hook (with kwargs) for ``reference_points``
and ``spatial_shapes``, and a forward hook that recomputes, exactly as mmcv
does, the softmax over levels x points per head and the sampling locations.
Hooks exist only inside the ``with`` block, so inference and every other code
path are unchanged; gradients flow through the recorded tensors of a model that
is being trained.
"""
import re
from typing import Any, Dict, List, Optional

import torch
from mmcv.ops import MultiScaleDeformableAttention
from torch import Tensor, nn

__all__ = [
    'DeformableAttentionRecorder', 'MethodOutputsRecorder',
    'DECODER_CROSS_ATTN'
]

#: module-name pattern of the decoder's deformable cross-attention in
#: mmdet's Deformable DETR (``...decoder.layers.<i>.cross_attn``)
DECODER_CROSS_ATTN = r'(^|\.)decoder\.layers\.\d+\.cross_attn$'


class DeformableAttentionRecorder:
    """Record mmcv ``MultiScaleDeformableAttention`` attention while active.

    Usage::

        with DeformableAttentionRecorder(model) as rec:
            model.forward_frames(imgs, samples)
        rec.records['detector.decoder.layers.0.cross_attn'][0]

    Every call of a matched module appends a dict to ``records[name]``:

    * ``attention_weights``: (B, Nq, heads, levels, points), softmaxed;
    * ``sampling_locations``: (B, Nq, heads, levels, points, 2), (x, y)
      normalised to [0, 1] of the padded input;
    * ``spatial_shapes``: (levels, 2) (h, w) of the value levels.

    Args:
        model (nn.Module): The model (or any submodule tree).
        pattern (str): Regex ``re.search``-ed in the module names; defaults
            to the decoder's cross-attention (:data:`DECODER_CROSS_ATTN`).
            ``r'encoder\\.layers\\.\\d+\\.self_attn$'`` selects the
            encoder's pixel self-attention.
        detach (bool): Store detached tensors. Defaults to False.
    """

    def __init__(self,
                 model: nn.Module,
                 pattern: str = DECODER_CROSS_ATTN,
                 detach: bool = False) -> None:
        self.modules = {
            name: m
            for name, m in model.named_modules()
            if isinstance(m, MultiScaleDeformableAttention)
            and re.search(pattern, name)
        }
        if not self.modules:
            raise ValueError(f'no MultiScaleDeformableAttention module of '
                             f'{type(model).__name__} matches {pattern!r}')
        self.detach = detach
        self.records: Dict[str, List[Dict[str, Tensor]]] = {}
        self._handles: List[Any] = []
        self._pending: Dict[str, Dict[str, Any]] = {}

    @property
    def names(self) -> List[str]:
        """Recorded module names in model order."""
        return list(self.modules)

    def __enter__(self) -> 'DeformableAttentionRecorder':
        self.records = {name: [] for name in self.modules}
        for name, module in self.modules.items():
            self._handles += [
                module.register_forward_pre_hook(
                    self._pre_hook(name), with_kwargs=True),
                module.sampling_offsets.register_forward_hook(
                    self._linear_hook(name, 'offsets')),
                module.attention_weights.register_forward_hook(
                    self._linear_hook(name, 'logits')),
                module.register_forward_hook(self._post_hook(name)),
            ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._pending = [], {}

    def _pre_hook(self, name: str):

        def hook(module, args, kwargs):
            names = ('query', 'key', 'value', 'identity', 'query_pos',
                     'key_padding_mask', 'reference_points', 'spatial_shapes')
            bound = dict(zip(names, args))
            bound.update(kwargs)
            self._pending[name] = dict(
                reference_points=bound['reference_points'],
                spatial_shapes=bound['spatial_shapes'])

        return hook

    def _linear_hook(self, name: str, key: str):

        def hook(module, args, output):
            self._pending.setdefault(name, {})[key] = output

        return hook

    def _post_hook(self, name: str):

        def hook(module, args, output):
            self.records[name].append(
                self._assemble(module, self._pending.pop(name)))

        return hook

    def _assemble(self, module: MultiScaleDeformableAttention,
                  got: Dict[str, Any]) -> Dict[str, Tensor]:
        """mmcv's own arithmetic on the captured tensors."""
        heads, levels = module.num_heads, module.num_levels
        points = module.num_points
        logits, offsets = got['logits'], got['offsets']
        bs, num_query = logits.shape[:2]
        weights = logits.view(bs, num_query, heads,
                              levels * points).softmax(-1).view(
                                  bs, num_query, heads, levels, points)
        offsets = offsets.view(bs, num_query, heads, levels, points, 2)
        # (B, Nq, 1, L, 1, 2 or 4), broadcast over heads and points
        ref = got['reference_points'][:, :, None, :, None]
        shapes = got['spatial_shapes']
        if ref.size(-1) == 2:
            # offsets in pixels of each level, normalised by (w_l, h_l)
            normalizer = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
            locations = ref + offsets / normalizer[:, None, :]
        else:
            # offsets relative to the reference box size
            locations = ref[..., :2] + offsets / points * ref[..., 2:] * 0.5
        record = dict(
            attention_weights=weights,
            sampling_locations=locations,
            spatial_shapes=shapes)
        if self.detach:
            record = {k: v.detach() for k, v in record.items()}
        return record

    def layer_records(self, call: int = -1) -> List[Dict[str, Tensor]]:
        """The ``call``-th record of every module, in model order."""
        return [self.records[name][call] for name in self.names]


class MethodOutputsRecorder:
    """Record the return values of ``obj.<method>`` while active.

    The bound method is shadowed by an instance attribute inside the
    ``with`` block and restored on exit (e.g. IDOL's per-frame mask
    features: ``MethodOutputsRecorder(model.mask_head,
    'forward_mask_feats')``).
    """

    def __init__(self, obj: Any, method: str) -> None:
        if not callable(getattr(obj, method, None)):
            raise AttributeError(f'{type(obj).__name__} has no method '
                                 f'{method!r}')
        self.obj, self.method = obj, method
        self.outputs: List[Any] = []
        self._shadowed: Optional[bool] = None

    def __enter__(self) -> 'MethodOutputsRecorder':
        self.outputs = []
        original = getattr(self.obj, self.method)
        self._shadowed = self.method in vars(self.obj)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            self.outputs.append(out)
            return out

        setattr(self.obj, self.method, wrapper)
        self._original = original
        return self

    def __exit__(self, *exc) -> None:
        if self._shadowed:
            setattr(self.obj, self.method, self._original)
        else:
            delattr(self.obj, self.method)
