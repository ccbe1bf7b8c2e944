# Copyright (c) mmookd contributors. All rights reserved.
from .tc_metric import TemporalConsistencyMetric
from .ytvis_metric import YTVISMetric

__all__ = ['YTVISMetric', 'TemporalConsistencyMetric']
