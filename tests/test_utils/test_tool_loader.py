# Copyright (c) mmookd contributors. All rights reserved.
"""mmookd.utils.load_tool: a script under tools/ loaded by its path."""
import os.path as osp
import sys

import pytest

from mmookd.utils import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = 'tools/analysis/plot_toy_rows.py'


def test_relative_path_from_the_repository_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the working directory
    tool = load_tool(TOOL)
    assert callable(tool.main) and callable(tool.mean_std)
    assert tool.__name__ == 'plot_toy_rows'  # the file's stem
    assert osp.samefile(tool.__file__, osp.join(REPO, TOOL))
    assert 'plot_toy_rows' not in sys.modules


def test_absolute_path_and_name():
    tool = load_tool(osp.join(REPO, TOOL), '_plot_rows_under_test')
    assert tool.__name__ == '_plot_rows_under_test'
    assert tool.mean_std([1.0, 3.0])[0] == pytest.approx(2.0)
    assert tool is not load_tool(TOOL)  # executed again each time


def test_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match='no_such_tool.py'):
        load_tool('tools/analysis/no_such_tool.py')
    with pytest.raises(FileNotFoundError, match='tools/analysis'):
        load_tool('tools/analysis')  # a directory is no tool either
