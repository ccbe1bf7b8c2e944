# Copyright (c) mmookd contributors. All rights reserved.
"""Every tool speaks to people (issue #16): a missing file, a bad config key
or an existing output gives exactly one ``error: ...`` line on stderr and
exit status 2, no traceback (unless ``--debug``); a damaged video is
processed as far as it decodes, with a warning saying where reading
stopped; outputs get ordinary file permissions.

Most checks call the tools' ``main`` in-process through
:func:`mmookd.utils.cli.run_cli`, exactly what ``__main__`` runs (cheap:
torch and mmdet are imported once); a few representative ones run the
script as a subprocess, to see the real stderr and exit status.
"""
import json
import os
import os.path as osp
import stat
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch

from mmookd.apis import open_frame_source
from mmookd.utils import load_tool
from mmookd.utils.cli import (
    INTERNAL_ERROR,
    USER_ERROR,
    error_message,
    run_cli,
    user_facing_warnings,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
TOY_TEACHER = osp.join(REPO,
                       'configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py')
OPENCV_DATA = '/usr/share/doc/opencv-doc/examples/data'
BAD_KEY = ['--cfg-options', 'model.nonexistent_key.x=1']
BAD_TYPE = ['--cfg-options', 'model.type=NoSuchModel']
_TOOLS = {}


def tool(relpath: str):
    """A tool's module, loaded from its file (tools/ is no package)."""
    if relpath not in _TOOLS:
        name = '_tool_' + relpath.replace('/', '_')[:-3]
        _TOOLS[relpath] = load_tool(osp.join(REPO, 'tools', relpath), name)
    return _TOOLS[relpath]


def entry(relpath: str):
    """What the tool's ``__main__`` passes to ``run_cli``."""
    module = tool(relpath)
    if relpath == 'toy_pipeline.py':
        return lambda argv: module.main(module.parse_args(argv))
    return module.main


def assert_one_error(status: int, err: str, *needles: str) -> str:
    """Status 2, the last stderr line is the only ``error:`` line (library
    warnings may come before it), no traceback; returns that line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == USER_ERROR, err
    assert lines and lines[-1].startswith('error: '), err
    assert sum(line.startswith('error:') for line in lines) == 1, err
    assert 'Traceback' not in err, err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run a tool in-process like its ``__main__``: (status, stderr)."""
    monkeypatch.setenv('LOCAL_RANK', '0')  # train / test set it otherwise
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(relpath, *argv):
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter('default')
            status = run_cli(entry(relpath), [str(a) for a in argv])
        return status, capsys.readouterr().err

    yield run
    torch.set_num_threads(torch_threads)


def run_script(relpath, *argv, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS='1', LOCAL_RANK='0')
    return subprocess.run(
        [sys.executable,
         osp.join('tools', relpath), *map(str, argv)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout)


def write_avi(path, num_frames, hw=(48, 64)):
    """An MJPG AVI: its header holds the exact frame count, and the frames
    before a cut still decode (an mp4 cut short loses its index)."""
    h, w = hw
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (w, h))
    rng = np.random.RandomState(0)
    for _ in range(num_frames):
        writer.write(rng.randint(0, 255, (h, w, 3)).astype(np.uint8))
    writer.release()


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    declared, count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count, declared


# ---------------------------------------------------------------------------
# the helper
# ---------------------------------------------------------------------------
def _raise(exc):

    def main(argv):
        raise exc

    return main


def test_run_cli_statuses_and_messages(capsys):
    registry = KeyError('"Foo is not in the mmdet::model registry"')
    assert run_cli(_raise(registry), []) == USER_ERROR
    assert capsys.readouterr().err == ('error: "Foo is not in the '
                                       'mmdet::model registry"\n')
    missing = FileNotFoundError(2, 'No such file or directory', 'x.json')
    assert error_message(missing) == 'No such file or directory: x.json'
    try:
        try:
            raise AttributeError("'str' object has no attribute 'items'")
        except AttributeError as err:
            raise RuntimeError('cannot build the teacher') from err
    except RuntimeError as chained:
        assert error_message(chained) == (
            'cannot build the teacher (caused by AttributeError: '
            "'str' object has no attribute 'items')")
    # a bug: one line too, but status 1 and a hint at --debug
    assert run_cli(_raise(ZeroDivisionError('oops')), []) == INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err == ('error: internal error: ZeroDivisionError: oops (rerun '
                   'with --debug for the traceback)\n')
    with pytest.raises(ValueError, match='multi'):
        run_cli(_raise(ValueError('multi\nline')), ['--debug'])
    assert run_cli(_raise(ValueError('multi\n line')), []) == USER_ERROR
    assert capsys.readouterr().err == 'error: multi line\n'
    assert run_cli(lambda argv: 3, []) == 3
    assert run_cli(lambda argv: {'mAP': 1.0}, []) == 0


def test_own_warnings_are_one_line(capsys):
    own = osp.join(REPO, 'mmookd', 'apis', 'inference.py')
    with user_facing_warnings(), warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.warn_explicit('v.avi: reading stopped', UserWarning, own, 1)
        warnings.warn_explicit('library', UserWarning, '/elsewhere/lib.py', 7)
    err = capsys.readouterr().err
    # other libraries' warnings keep Python's format (and pytest's capture)
    assert err == 'warning: v.avi: reading stopped\n'


# ---------------------------------------------------------------------------
# missing files, bad config keys, existing outputs: every tool
# ---------------------------------------------------------------------------
# Every tool in tools/ is in the tests below for each case that applies to
# it. The cases that do not apply:
#   missing input file: dataset_converters/generate_toyvis.py and
#     generate_realshape.py (they read nothing), analysis/gpu_selfcheck.py
#     (it reads only the repository's own configs).
#   bad config key (the tool takes no config): analysis/eval_ytvis.py,
#     analysis/summarize_toy_runs.py, analysis/plot_toy_rows.py,
#     misc/check_dataset.py, dataset_converters/*.py,
#     model_converters/publish_checkpoint.py, analysis/gpu_selfcheck.py (its
#     configs are fixed), toy_pipeline.py (rows name the configs).
#     Tools with --cfg-options get a bad key there (train / test:
#     test_train_and_test_report_runner_build_errors); tools that take a
#     config but have no --cfg-options get a config file with a bad key
#     (test_bad_config_files).
#   existing output (the tool writes no file): analysis/eval_ytvis.py,
#     analysis/summarize_toy_runs.py, analysis/train_step_benchmark.py (they
#     print), train.py (a new timestamped run folder in --work-dir each
#     time; --resume continues one on purpose).
def test_missing_files(cli, tmp_path):
    nope = tmp_path / 'nope'
    out = tmp_path / 'out'
    video = tmp_path / 'in.avi'
    write_avi(video, 2)
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'not read: a missing input is found first')
    # (tool, what the error says besides the path, arguments...)
    cases = [
        ('train.py', 'config file not found', f'{nope}.py'),
        ('test.py', 'checkpoint not found', TOY_CFG, f'{nope}.pth'),
        ('demo/video_demo.py', '', f'{nope}.mp4', TOY_CFG, '--out', out),
        ('demo/video_demo.py', 'config file not found', video, f'{nope}.py',
         '--out', out),
        ('analysis/benchmark.py', 'config file not found', f'{nope}.py'),
        ('analysis/eval_ytvis.py', '', f'{nope}.json', '--gt', f'{nope}.json'),
        ('analysis/summarize_toy_runs.py', '', f'{nope}.json'),
        ('analysis/toy_tracking_benchmark.py', 'not found', '--config',
         f'{nope}.py'),
        ('toy_pipeline.py', 'no such file', '--data-root', tmp_path / 'toyvis',
         '--teacher-checkpoint', f'{nope}.pth'),
        ('dataset_converters/ytvis2cocovid.py', '', f'{nope}.json', out),
        ('dataset_converters/split_ytvis.py', '', f'{nope}.json', out),
        ('model_converters/publish_checkpoint.py', 'checkpoint not found',
         f'{nope}.pth', out),
        ('model_converters/vnext_idol_to_mmookd.py', 'not found',
         f'{nope}.pth', out),
        ('model_converters/vnext_idol_to_mmookd.py', 'config file not found',
         ckpt, out, '--config', f'{nope}.py'),
        ('analysis/build_knowledge_bank.py', 'config file not found',
         f'{nope}.py', ckpt, '--out', out),
        ('analysis/build_knowledge_bank.py', 'checkpoint not found',
         TOY_TEACHER, f'{nope}.pth', '--out', out),
        ('analysis/build_knowledge_bank.py', '--ann-file not found',
         TOY_TEACHER, ckpt, '--out', out, '--ann-file', f'{nope}.json',
         '--img-dir', tmp_path),
        ('analysis/build_knowledge_bank.py', '--img-dir not found',
         TOY_TEACHER, ckpt, '--out', out, '--ann-file', ckpt, '--img-dir',
         nope),
        ('analysis/instance_similarity.py', 'checkpoint not found', TOY_CFG,
         '--checkpoints', f'{nope}.pth', '--out-dir', out),
        ('analysis/train_step_benchmark.py', 'config file not found',
         f'{nope}.py'),
        ('analysis/fast_path_benchmark.py', 'config file not found',
         f'{nope}.py', '--device', 'cpu', '--out', out),
        ('analysis/track_strip.py', 'config file not found', f'{nope}.py',
         '--checkpoints', ckpt, '--names', 'a', '--source', video, '--out',
         out),
        ('analysis/track_strip.py', '', TOY_CFG, '--checkpoints', ckpt,
         '--names', 'a', '--ann-file', f'{nope}.json', '--out', out),
        ('analysis/plot_toy_rows.py', '', f'{nope}.json', '--out', out),
        ('misc/check_dataset.py', 'annotation file not found', f'{nope}.json',
         tmp_path, '--out', out),
    ]
    for relpath, needle, *argv in cases:
        line = assert_one_error(*cli(relpath, *argv), str(nope), needle)
        assert not out.exists(), (relpath, line)
    assert not (tmp_path / 'toyvis').exists()  # failed before any work


def test_existing_outputs(cli, tmp_path):
    mine = tmp_path / 'mine'
    mine.mkdir()
    precious = mine / 'precious.json'
    precious.write_text('[]')
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'not read: the output is checked first')
    video = tmp_path / 'in.avi'
    write_avi(video, 2)
    # (tool, the existing path its error names, arguments...)
    cases = [
        ('test.py', precious, TOY_CFG, ckpt, '--out', precious),
        ('test.py', precious, TOY_CFG, ckpt, '--out', mine / 'precious'),
        ('demo/video_demo.py', precious, video, TOY_CFG, '--out-json',
         precious),
        ('analysis/benchmark.py', precious, TOY_CFG, '--out', precious),
        ('analysis/toy_tracking_benchmark.py', precious, '--out', precious),
        ('toy_pipeline.py', precious, '--data-root', tmp_path / 'toyvis',
         '--out', precious),
        ('dataset_converters/ytvis2cocovid.py', mine / 'x.json', precious,
         mine / 'x.json'),
        ('dataset_converters/split_ytvis.py', mine / 'train_sub.json',
         precious, mine),
        ('dataset_converters/generate_toyvis.py', tmp_path, '--out', tmp_path),
        ('dataset_converters/generate_realshape.py', mine, 'ytvis2021', mine),
        ('model_converters/publish_checkpoint.py', precious, ckpt, precious),
        ('model_converters/vnext_idol_to_mmookd.py', precious, ckpt, precious),
        ('analysis/build_knowledge_bank.py', precious, TOY_TEACHER, ckpt,
         '--out', precious),
        ('analysis/instance_similarity.py', mine / 'instance_similarity.json',
         TOY_CFG, '--checkpoints', ckpt, '--splits', 'train', '--out-dir',
         mine),
        ('analysis/fast_path_benchmark.py', precious, TOY_CFG, '--device',
         'cpu', '--out', precious),
        ('analysis/gpu_selfcheck.py', mine / 'gpu_selfcheck.json', '--tiny',
         '--device', 'cpu', '--out', mine),
        ('analysis/track_strip.py', precious, TOY_CFG, '--checkpoints', ckpt,
         '--names', 'a', '--source', video, '--out', precious),
        ('analysis/plot_toy_rows.py', precious, precious, '--out', precious),
        ('misc/check_dataset.py', precious, precious, tmp_path, '--out',
         precious),
    ]
    cases = [c for c in cases if osp.isfile(osp.join(REPO, 'tools', c[0]))]
    (mine / 'x.json').write_text('{}')
    (mine / 'train_sub.json').write_text('{}')
    (mine / 'instance_similarity.json').write_text('{}')
    (mine / 'gpu_selfcheck.json').write_text('{}')
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'toyvis_val.json').write_text('{}')
    before = {p: p.read_bytes() for p in mine.iterdir()}
    for relpath, existing, *argv in cases:
        assert_one_error(*cli(relpath, *argv), str(existing))
    assert {p: p.read_bytes() for p in mine.iterdir()} == before
    assert not (tmp_path / 'toyvis').exists()


def test_bad_config_keys_in_process(cli, tmp_path):
    video = tmp_path / 'in.avi'
    write_avi(video, 2)
    out = tmp_path / 'vis.mp4'
    assert_one_error(
        *cli('demo/video_demo.py', video, TOY_CFG, '--out', out, *BAD_KEY),
        'nonexistent_key')
    assert_one_error(*cli('analysis/benchmark.py', TOY_CFG, *BAD_TYPE),
                     'NoSuchModel is not in the', 'model registry')
    assert not out.exists()
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'not read: the model is built first')
    strip = tmp_path / 'strip.png'
    assert_one_error(
        *cli('analysis/track_strip.py', TOY_CFG, '--checkpoints', ckpt,
             '--names', 'a', '--source', video, '--out', strip, *BAD_KEY),
        'nonexistent_key')
    assert not strip.exists()
    # the model is built before the dataset: no data root needed
    assert_one_error(
        *cli('analysis/train_step_benchmark.py', TOY_CFG, '--data-root',
             tmp_path / 'no_data', *BAD_KEY), 'nonexistent_key')


def test_bad_config_files(cli, tmp_path):
    """Tools that take a config but no ``--cfg-options``: a bad key in the
    config file itself, reported when the model is built, before any data
    is read or any weights are loaded."""
    bad_idol = tmp_path / 'bad_idol.py'
    bad_idol.write_text(f'_base_ = [{TOY_CFG!r}]\n'
                        'model = dict(nonexistent_key=1)\n')
    bad_teacher = tmp_path / 'bad_teacher.py'
    bad_teacher.write_text(f'_base_ = [{TOY_TEACHER!r}]\n'
                           'model = dict(nonexistent_key=1)\n')
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'not read: the model is built first')
    official = tmp_path / 'official.pth'
    torch.save(dict(model={}), official)
    out = tmp_path / 'out'
    toyvis = tmp_path / 'toyvis'  # only the annotation file's existence
    (toyvis / 'annotations').mkdir(parents=True)
    (toyvis / 'annotations' / 'toyvis_val.json').write_text('not read')
    cases = [
        ('analysis/build_knowledge_bank.py', bad_teacher, ckpt, '--out', out),
        ('analysis/instance_similarity.py', bad_idol, '--checkpoints', ckpt,
         '--splits', 'train', '--data-root', tmp_path / 'no_data', '--out-dir',
         out),
        ('analysis/fast_path_benchmark.py', bad_idol, '--device', 'cpu',
         '--out', out),
        ('analysis/toy_tracking_benchmark.py', '--config', bad_idol,
         '--checkpoint', ckpt, '--data-root', toyvis, '--splits', 'val',
         '--trackers', 'idol', '--out', out),
        ('model_converters/vnext_idol_to_mmookd.py', official, out, '--config',
         bad_idol),
    ]
    for relpath, *argv in cases:
        line = assert_one_error(*cli(relpath, *argv), 'nonexistent_key')
        assert not out.exists(), (relpath, line)


@pytest.mark.parametrize('relpath, options, needle', [
    ('train.py', BAD_KEY, 'nonexistent_key'),
    ('test.py', BAD_TYPE, 'NoSuchModel is not in the'),
])
def test_train_and_test_report_runner_build_errors(tmp_path, relpath, options,
                                                   needle):
    """The error is raised while mmengine's Runner builds the model, after
    it started logging: still one line on stderr, status 2."""
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'')
    argv = [TOY_CFG] + ([ckpt] if relpath == 'test.py' else [])
    proc = run_script(relpath, *argv, '--work-dir', tmp_path / 'w', *options)
    assert_one_error(proc.returncode, proc.stderr, needle)


def test_debug_shows_the_traceback(tmp_path):
    """generate_toyvis imports no torch: two quick real processes."""
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'toyvis_val.json').write_text('mine')
    script = 'dataset_converters/generate_toyvis.py'
    proc = run_script(script, '--out', tmp_path)
    assert_one_error(proc.returncode, proc.stderr, str(tmp_path), '--force')
    proc = run_script(script, '--out', tmp_path, '--debug')
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr and 'FileExistsError' in proc.stderr
    assert (tmp_path / 'annotations' / 'toyvis_val.json').read_text() == 'mine'


# ---------------------------------------------------------------------------
# damaged videos, file permissions
# ---------------------------------------------------------------------------
def test_damaged_video_is_processed_up_to_the_damage(cli, tmp_path):
    whole = tmp_path / 'whole.avi'
    write_avi(whole, 12)
    damaged = tmp_path / 'damaged.avi'
    data = whole.read_bytes()
    damaged.write_bytes(data[:len(data) // 2])
    readable, declared = count_frames(damaged)
    assert declared == 12 and 0 < readable < 11
    out = tmp_path / 'out' / 'vis.mp4'
    out_json = tmp_path / 'out' / 'vis.json'
    umask = os.umask(0o022)
    try:
        status, err = cli('demo/video_demo.py', damaged, TOY_CFG, '--out', out,
                          '--out-json', out_json, '--device', 'cpu')
    finally:
        os.umask(umask)
    assert status == 0, err
    assert (f'warning: {damaged}: reading stopped at frame {readable} of '
            f'12 (damaged video?)') in err.splitlines()
    assert count_frames(out)[0] == readable
    json.loads(out_json.read_text())
    # ordinary permissions, not mkstemp's 0600
    for path in (out, out_json):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    assert sorted(os.listdir(out.parent)) == ['vis.json', 'vis.mp4']


def test_converter_output_has_ordinary_permissions(cli, tmp_path):
    ann = tmp_path / 'ann.json'
    ann.write_text(
        json.dumps(
            dict(
                videos=[
                    dict(
                        id=1,
                        width=4,
                        height=4,
                        length=1,
                        file_names=['v/0.jpg'])
                ],
                annotations=[],
                categories=[dict(id=1, name='thing')])))
    out = tmp_path / 'cocovid.json'
    umask = os.umask(0o022)
    try:
        status, err = cli('dataset_converters/ytvis2cocovid.py', ann, out)
    finally:
        os.umask(umask)
    assert status == 0, err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644


@pytest.mark.skipif(
    not osp.isfile(osp.join(OPENCV_DATA, 'tree.avi')),
    reason='opencv-doc videos missing (scripts/install_test_videos.sh)')
def test_opencv_doc_damaged_videos():
    """``tree.avi`` declares 444 frames and 68 decode: read up to there,
    with the warning. ``Megamind_bugy.avi`` (a broken recompression of
    Megamind.avi) decodes completely with this OpenCV / FFmpeg: read to
    its end, no warning."""
    tree = osp.join(OPENCV_DATA, 'tree.avi')
    with pytest.warns(UserWarning) as record:
        frames = sum(1 for _ in open_frame_source(tree))
    assert frames == 68
    assert [str(w.message) for w in record] == [
        f'{tree}: reading stopped at frame 68 of 444 (damaged video?)'
    ]
    bugy = osp.join(OPENCV_DATA, 'Megamind_bugy.avi')
    if not osp.isfile(bugy):
        return
    source = open_frame_source(bugy)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        frames = sum(1 for _ in source)
    assert frames == source.num_frames == 270
