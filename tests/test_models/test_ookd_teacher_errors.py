# Copyright (c) mmookd contributors. All rights reserved.
"""Errors while the OOKD distiller builds its teacher reach the user with
their real cause (issue #16), instead of ``'OOKD' object has no attribute
'teacher'``; ``model.teacher.cfg_options`` given on the command line
(mmengine passes a dict as its text) works or is refused clearly."""
import argparse

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config, DictAction
from test_ookd import build, ookd_cfg
from torch import nn

from mmookd.models.vis.ookd import parse_teacher_cfg_options


@MODELS.register_module(force=True)
class _TeacherWithABug(nn.Module):
    """A teacher whose constructor trips over a missing attribute."""

    def __init__(self):
        super().__init__()
        raise AttributeError("'NoneType' object has no attribute 'shape'")


def cli_cfg_options(*pairs):
    """``--cfg-options`` as mmengine's tools parse it."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *pairs]).cfg_options


def test_attribute_error_while_building_the_teacher_is_not_swallowed():
    model = build(ookd_cfg(teacher=dict(config=dict(type='_TeacherWithABug'))))
    with pytest.raises(RuntimeError) as info:
        model.teacher
    message = str(info.value)
    assert message.startswith(
        "cannot build the OOKD teacher from the model dict of type "
        "'_TeacherWithABug': AttributeError: ")
    assert "'NoneType' object has no attribute 'shape'" in message
    assert isinstance(info.value.__cause__, AttributeError)
    assert 'has no attribute \'teacher\'' not in message


def test_cfg_options_from_the_command_line():
    options = cli_cfg_options("model.teacher.cfg_options={'num_queries':6}")
    cfg = Config(dict(model=ookd_cfg()))
    cfg.merge_from_dict(options)
    # what mmengine hands the model: the text of the dict
    assert cfg.model.teacher.cfg_options == "{'num_queries':6}"
    model = build(cfg.model)
    assert model.teacher_cfg['cfg_options'] == {'num_queries': 6}
    assert model.teacher.num_queries == 6
    # the per-key form needs no parsing
    cfg = Config(dict(model=ookd_cfg()))
    cfg.merge_from_dict(
        cli_cfg_options('model.teacher.cfg_options.num_queries=5'))
    assert build(cfg.model).teacher.num_queries == 5


def test_unreadable_cfg_options_are_refused_when_the_student_is_built():
    hint = r'model\.teacher\.cfg_options\.KEY=VALUE'
    for text in ('online_checkpoint', "{'num_queries':"):
        with pytest.raises(ValueError, match=hint):
            build(
                ookd_cfg(
                    teacher=dict(
                        config=ookd_cfg().teacher.config, cfg_options=text)))
    with pytest.raises(TypeError, match=hint):
        parse_teacher_cfg_options(5)
    # DictAction splits text with a comma into a list of strings
    assert parse_teacher_cfg_options(["{'a':1", "'b':None}"]) == dict(
        a=1, b=None)
    assert parse_teacher_cfg_options(None) is None
