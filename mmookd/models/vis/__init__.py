# Copyright (c) mmookd contributors. All rights reserved.
from .idol import IDOL, IDOLStreamState
from .ookd import OOKD, build_frozen_teacher

__all__ = ['IDOL', 'IDOLStreamState', 'OOKD', 'build_frozen_teacher']
