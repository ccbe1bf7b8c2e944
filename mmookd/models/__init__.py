# Copyright (c) mmookd contributors. All rights reserved.
"""mmookd models; importing registers them into mmdet's registries."""
from .aggregators import *  # noqa: F401,F403
from .flow import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from .trackers import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from .vis import *  # noqa: F401,F403
