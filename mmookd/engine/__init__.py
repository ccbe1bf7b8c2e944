# Copyright (c) mmookd contributors. All rights reserved.
from .cpu_distributed import (
    CPUCompatibleDDP,
    setup_cpu_distributed,
    teardown_distributed,
)
from .reproducibility import ReproducibilityHook, make_reproducible

__all__ = [
    'CPUCompatibleDDP', 'setup_cpu_distributed', 'teardown_distributed',
    'ReproducibilityHook', 'make_reproducible'
]
