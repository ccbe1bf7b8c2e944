# Copyright (c) mmookd contributors. All rights reserved.
"""Count host-device synchronisation points and aten calls (issue 15).

On a GPU, per-frame inference of a DETR-style model is bound by host
overhead: every value the host reads from the device (``.item()``, a
tensor in an ``if``, ``nonzero``, ``.cpu()``) drains the launch queue, and
every aten call costs a launch. Both are properties of the code, not of
the device, so they are counted on the CPU:

* **profiler sync points**: aten ops that read device data on the host
  (``aten::_local_scalar_dense`` behind ``.item()`` / ``int()`` /
  ``float()``, ``aten::is_nonzero`` behind a tensor's truth test,
  ``aten::nonzero`` and other ops whose output size depends on the data),
  counted outermost only (a truth test counts once, not also its
  ``_local_scalar_dense``);
* **Python-level downloads**: ``.cpu()``, ``.numpy()``,
  ``.tolist()``, ``.item()``, ``bool()`` / ``int()`` / ``float()`` and
  ``np.asarray`` of tensors, which a CPU profile does not show as syncs
  (a ``.cpu()`` of a CPU tensor is free there). A ``.numpy()`` or
  ``.tolist()`` of a tensor that a counted ``.cpu()`` returned is the same
  download and is not counted again. ``.to(device)`` is not counted: on
  a CPU run a download and an upload look the same, so code meant to be
  counted downloads with ``.cpu()``;
* **aten calls**: every ``aten::`` event, nested ones included.

Counts are exact and deterministic, unlike timings, so tests can assert
them.
"""
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode

__all__ = ['SYNC_OPS', 'SyncReport', 'count_syncs', 'DownloadCounter']

# aten ops that read data on the host (outermost occurrence counted)
SYNC_OPS = frozenset({
    'aten::_local_scalar_dense', 'aten::is_nonzero', 'aten::nonzero',
    'aten::masked_select', 'aten::unique', 'aten::_unique', 'aten::_unique2',
    'aten::unique_consecutive', 'aten::unique_dim', 'aten::equal',
    'aten::allclose', 'aten::repeat_interleave', 'aten::bincount',
    'aten::histc', 'aten::_assert_async.msg'
})

_DOWNLOAD_METHODS = {
    '__bool__', '__int__', '__float__', '__index__', '__array__', 'item',
    'tolist', 'numpy', 'cpu'
}


def _name(func: Any) -> str:
    return getattr(func, '__name__', str(func))


class DownloadCounter(TorchFunctionMode):
    """Counts Python-level device-to-host conversions of tensors.

    Thread-local, like every ``TorchFunctionMode``: only the thread that
    entered it is counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self._downloaded: Dict[int, Any] = {}  # id -> weakref
        self._depth = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        count = False
        if self._depth == 0 and args and isinstance(args[0], torch.Tensor):
            if name in _DOWNLOAD_METHODS:
                count = not (name in ('numpy', 'tolist', '__array__')
                             and self._is_download(args[0]))
        if count:
            self.counts[name] += 1
        self._depth += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self._depth -= 1
        if count and isinstance(out, torch.Tensor):
            self._downloaded[id(out)] = weakref.ref(out)
        return out

    def _is_download(self, tensor: torch.Tensor) -> bool:
        ref = self._downloaded.get(id(tensor))
        return ref is not None and ref() is tensor


@dataclass
class SyncReport:
    """Counts of one profiled call (divide by frames for per frame).

    Attributes:
        syncs (int): Profiler sync points (outermost :data:`SYNC_OPS`).
        sync_ops (dict): The same by op name.
        downloads (int): Python-level device-to-host conversions.
        download_methods (dict): The same by method.
        aten_calls (int): ``aten::`` events, nested included.
        top_level_aten_calls (int): ``aten::`` events not inside another.
    """
    syncs: int = 0
    sync_ops: Dict[str, int] = field(default_factory=dict)
    downloads: int = 0
    download_methods: Dict[str, int] = field(default_factory=dict)
    aten_calls: int = 0
    top_level_aten_calls: int = 0

    def per(self, frames: int) -> Dict[str, float]:
        """The counts divided by ``frames``."""
        return dict(
            syncs=self.syncs / frames,
            downloads=self.downloads / frames,
            aten_calls=self.aten_calls / frames,
            top_level_aten_calls=self.top_level_aten_calls / frames)


def _has_ancestor(event: Any, names: frozenset) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in names:
            return True
        parent = parent.cpu_parent
    return False


def _has_aten_ancestor(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith('aten::'):
            return True
        parent = parent.cpu_parent
    return False


def count_syncs(fn: Callable[[], Any],
                count_downloads: bool = True) -> Tuple[Any, SyncReport]:
    """Run ``fn`` under the CPU profiler (and the download counter).

    Args:
        fn (callable): What to count; called once without arguments.
        count_downloads (bool): Also count Python-level downloads. Turn
            it off around ``torch.compile``-d code: the counter is a
            ``TorchFunctionMode``, which makes dynamo retrace.

    Returns:
        tuple: ``fn``'s return value and the :class:`SyncReport`.
    """
    from torch.profiler import ProfilerActivity, profile
    counter: Optional[DownloadCounter] = (
        DownloadCounter() if count_downloads else None)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        if counter is not None:
            with counter:
                out = fn()
        else:
            out = fn()
    sync_ops: Counter = Counter()
    aten = top = 0
    for event in prof.events():
        name = event.name
        if not name.startswith('aten::'):
            continue
        aten += 1
        if not _has_aten_ancestor(event):
            top += 1
        if name in SYNC_OPS and not _has_ancestor(event, SYNC_OPS):
            sync_ops[name] += 1
    report = SyncReport(
        syncs=sum(sync_ops.values()),
        sync_ops=dict(sync_ops),
        downloads=counter.total if counter is not None else 0,
        download_methods=dict(counter.counts) if counter is not None else {},
        aten_calls=aten,
        top_level_aten_calls=top)
    return out, report
