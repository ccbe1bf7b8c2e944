# Copyright (c) mmookd contributors. All rights reserved.
from .idol import IDOL, IDOLStreamState

__all__ = ['IDOL', 'IDOLStreamState']
