# Copyright (c) mmookd contributors. All rights reserved.
from .object_decoder import ObjectDecoderLayer, ObjectTokenDecoder
from .object_encoder import (
    ObjectEncoderLayer,
    ObjectTokenEncoder,
    TokenAttention,
)
from .token_average import TokenAverageAggregator
from .vita_aggregator import VITAAggregator

__all__ = [
    'ObjectDecoderLayer', 'ObjectTokenDecoder', 'ObjectEncoderLayer',
    'ObjectTokenEncoder', 'TokenAttention', 'TokenAverageAggregator',
    'VITAAggregator'
]
