# Copyright (c) mmookd contributors. All rights reserved.
from .dynamic_mask_head import IDOLMaskHead, MaskBranch
from .idol_head import IDOLHead

__all__ = ['IDOLMaskHead', 'MaskBranch', 'IDOLHead']
