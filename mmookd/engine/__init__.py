# Copyright (c) mmookd contributors. All rights reserved.
from .cpu_distributed import CPUCompatibleDDP, setup_cpu_distributed

__all__ = ['CPUCompatibleDDP', 'setup_cpu_distributed']
