# Copyright (c) mmookd contributors. All rights reserved.
"""Safe loading of mmengine checkpoints with torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``. mmengine
0.10.7 calls ``torch.load`` without that argument, so resuming one of its own
checkpoints fails: they hold the ``message_hub`` state (``HistoryBuffer``
objects with numpy arrays, scalars and the buffer's statistics methods).

Rather than switching the safety off (``weights_only=False`` or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), we allow-list exactly the globals
those checkpoints reference. ``HistoryBuffer`` pickles its statistics
methods as ``getattr(HistoryBuffer, 'mean')``; instead of allowing the
builtin ``getattr`` (which would reach any attribute of any allowed object)
we register a restricted stand-in under that name that only resolves
registered ``HistoryBuffer`` statistics.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

_HISTORY_BUFFER_STATISTICS = {'min', 'max', 'mean', 'current'}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to ``HistoryBuffer``'s statistics methods."""
    # The class-level registry only fills when a buffer is first created, so
    # the built-in statistics are listed explicitly.
    allowed = _HISTORY_BUFFER_STATISTICS | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({obj!r}, {name!r}): mmookd only '
        'allows HistoryBuffer statistics methods. Only load checkpoints you '
        'trust; see mmookd.utils.compat.')


def _numpy_globals() -> List[Tuple[Callable, str]]:
    """numpy objects referenced by pickled arrays and scalars, under both
    the numpy 1.x (``numpy.core``) and 2.x (``numpy._core``) names so that
    checkpoints written with either load."""
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    items = []
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        items.append((multiarray._reconstruct, f'{mod}._reconstruct'))
        items.append((multiarray.scalar, f'{mod}.scalar'))
    items.append((np.ndarray, 'numpy.ndarray'))
    items.append((np.dtype, 'numpy.dtype'))
    # numpy >= 1.25 pickles dtypes by their class, e.g. Float64DType.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                items.append((cls, f'numpy.dtypes.{name}'))
    return items


SafeGlobal = Union[Callable, Tuple[Callable, str]]
MMENGINE_CHECKPOINT_SAFE_GLOBALS: List[SafeGlobal] = [
    HistoryBuffer,
    (_history_buffer_getattr, 'builtins.getattr'),
    *_numpy_globals(),
]


def allow_mmengine_checkpoints() -> None:
    """Register :data:`MMENGINE_CHECKPOINT_SAFE_GLOBALS` with torch's
    ``weights_only`` unpickler (idempotent; no-op on torch < 2.4)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(MMENGINE_CHECKPOINT_SAFE_GLOBALS)


allow_mmengine_checkpoints()
