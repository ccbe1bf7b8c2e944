# Copyright (c) mmookd contributors. All rights reserved.
"""mmookd: Offline-to-Online Knowledge Distillation for Video Instance
Segmentation as an OpenMMLab (mmdet 3.3) plugin.

Importing the package registers every component into mmdet's registries, so
configs only need ``custom_imports = dict(imports=['mmookd'])``.
"""
from . import datasets, engine, evaluation, models  # noqa: F401,E402
from .utils import compat  # noqa: F401  (torch>=2.6 checkpoint loading)
from .version import __version__, version_info  # noqa: E402

__all__ = ['__version__', 'version_info']
