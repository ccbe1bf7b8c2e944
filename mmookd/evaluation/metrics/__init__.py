# Copyright (c) mmookd contributors. All rights reserved.
from .ytvis_metric import YTVISMetric

__all__ = ['YTVISMetric']
