# Copyright (c) mmookd contributors. All rights reserved.
from .compat import (
    MMENGINE_CHECKPOINT_SAFE_GLOBALS,
    allow_mmengine_checkpoints,
)
from .config_utils import remap_data_roots, set_data_root
from .tool_loader import load_tool

__all__ = [
    'MMENGINE_CHECKPOINT_SAFE_GLOBALS', 'allow_mmengine_checkpoints',
    'set_data_root', 'remap_data_roots', 'load_tool'
]
