# Copyright (c) mmookd contributors. All rights reserved.
"""A quiet console for jobs made of several mmengine runs.

An mmengine ``Runner`` prints its environment, its whole config and a line
every few iterations; a job of six runs (``tools/toy_pipeline.py``) then
prints thousands of lines, and the table at its end scrolls away. Here each
stage (one training, one evaluation) becomes **one console line** with a
progress bar::

    IDOL (no KD), seed 0: train [########............] 240/600 2:01, ETA 3:02

updated in place on a terminal (``\\r``) and printed once, finished, when
the output is a file or a pipe. Everything the stage prints (mmengine's
console logger, ``print``, Python warnings) goes to a log file that the
finished line names; mmengine's own logs stay in the run's work dir as
always. ``verbose=True`` keeps the old, full console.

Usage::

    console = StageConsole()
    with console.stage('baseline: train', 'work/x/pipeline.log') as stage:
        runner = Runner.from_cfg(cfg)
        runner.register_hook(StageProgressHook(stage), 'VERY_LOW')
        runner.train()
"""
import contextlib
import logging
import os
import os.path as osp
import shutil
import sys
import time
import warnings
from typing import IO, Iterator, Optional

from mmengine.hooks import Hook

__all__ = [
    'StageConsole', 'Stage', 'StageProgressHook', 'format_duration',
    'progress_text'
]


def format_duration(seconds: Optional[float]) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``; ``None`` -> ``'?'``."""
    if seconds is None:
        return '?'
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f'{hours}:{minutes:02d}:{secs:02d}'
    return f'{minutes}:{secs:02d}'


def progress_text(done: int,
                  total: Optional[int],
                  elapsed: float,
                  eta: Optional[float],
                  width: int = 20) -> str:
    """``[######..............] 180/600 1:30, ETA 3:30``; without a total
    only the elapsed time."""
    if not total:
        return format_duration(elapsed)
    filled = int(width * min(max(done / total, 0.0), 1.0))
    bar = '#' * filled + '.' * (width - filled)
    return (f'[{bar}] {done}/{total} {format_duration(elapsed)}, '
            f'ETA {format_duration(eta)}')


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is when written to.

    mmengine's console handler keeps the stream it was made with; after a
    stage its log file is closed, and a later message of that logger (e.g.
    ``load_checkpoint`` of the next stage logs through the last runner's
    logger) then goes to the current stage's log instead of failing.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_CURRENT_STDOUT = _CurrentStdout()


def _release_handlers(stream: IO) -> None:
    """Point every logging stream handler that writes to ``stream`` at the
    current ``sys.stdout`` instead (``stream`` is about to be closed)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger)
    ]
    try:
        from mmengine.logging import MMLogger
        loggers += list(MMLogger._instance_dict.values())
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    for logger in loggers:
        for handler in getattr(logger, 'handlers', []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler) and \
                    handler.stream is stream:
                handler.setStream(_CURRENT_STDOUT)


class Stage:
    """One console line: what runs, how far it is, where its log is."""

    def __init__(self, console: 'StageConsole', label: str,
                 log_file: Optional[str]) -> None:
        self.console = console
        self.label = label
        self.log_file = log_file
        self.start = time.time()
        self.done = 0
        self.total: Optional[int] = None
        self.first_done: Optional[int] = None
        self.first_time: Optional[float] = None
        self.num_warnings = 0
        self.note = ''
        self._last_draw = 0.0

    def update(self, done: int, total: Optional[int] = None) -> None:
        """``done`` of ``total`` steps (iterations, videos) finished."""
        if total is not None and total != self.total:
            # a new phase (test after train) restarts the rate estimate
            self.total, self.first_done, self.first_time = total, None, None
        self.done = done
        now = time.time()
        if self.first_done is None:
            # the rate is measured from the first report on, so start-up
            # (building the model, loading weights) does not skew the ETA
            self.first_done, self.first_time = done, now
        self.console._draw(self, final=False, now=now)

    def eta(self, now: float) -> Optional[float]:
        if self.first_done is None or not self.total:
            return None
        steps = self.done - self.first_done
        if steps <= 0:
            return None
        rate = (now - self.first_time) / steps
        return rate * (self.total - self.done)

    def text(self, now: float, final: bool, failed: bool = False) -> str:
        elapsed = now - self.start
        if final:
            body = progress_text(self.done, self.total, elapsed, 0.0)
            if self.total:
                body = body.rsplit(', ETA', 1)[0]
            body += ', failed' if failed else ''
        else:
            body = progress_text(self.done, self.total, elapsed, self.eta(now))
        line = f'{self.label} {body}'
        if self.note:
            line += f' {self.note}'
        if final and self.num_warnings:
            s = 's' if self.num_warnings > 1 else ''
            line += f' ({self.num_warnings} warning{s})'
        if final and self.log_file:
            line += f', log {self.log_file}'
        return line


class StageConsole:
    """Stages as single lines on ``stream`` (default: the current
    ``sys.stdout``), their output in log files.

    Args:
        stream: Where the lines go.
        verbose (bool): Print everything as it comes (no redirection, no
            progress bar): the full mmengine console.
        interval (float): Seconds between in-place redraws on a terminal.
    """

    def __init__(self,
                 stream: Optional[IO] = None,
                 verbose: bool = False,
                 interval: float = 0.5) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.verbose = verbose
        self.interval = interval
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.lines = 0

    def print(self, text: str = '') -> None:
        """A line on the console (outside of any stage's log)."""
        self.stream.write(text + '\n')
        self.stream.flush()
        self.lines += text.count('\n') + 1

    def _draw(self,
              stage: Stage,
              final: bool,
              now: float,
              failed: bool = False) -> None:
        if self.verbose:
            return
        if final:
            text = stage.text(now, True, failed)
            if self.tty:
                self.stream.write('\r\x1b[K')
            self.print(text)
        elif self.tty and now - stage._last_draw >= self.interval:
            stage._last_draw = now
            # a redrawn line must not wrap: \r only goes back to the start
            # of the terminal's last row
            width = shutil.get_terminal_size((100, 24)).columns
            self.stream.write('\r\x1b[K' +
                              stage.text(now, False)[:max(width - 1, 20)])
            self.stream.flush()

    @contextlib.contextmanager
    def stage(self,
              label: str,
              log_file: Optional[str] = None) -> Iterator[Stage]:
        """Run a stage: its output goes to ``log_file`` (appended; none:
        discarded), one line on the console says how it went."""
        stage = Stage(self, label, log_file)
        if self.verbose:
            self.print(label)
            yield stage
            return
        if log_file:
            os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
            sink = open(log_file, 'a')
        else:
            sink = open(os.devnull, 'w')
        show = warnings.showwarning

        def counting_showwarning(*args, **kwargs):
            stage.num_warnings += 1
            show(*args, **kwargs)

        warnings.showwarning = counting_showwarning
        self._draw(stage, final=False, now=time.time())
        failed = True
        try:
            with contextlib.redirect_stdout(sink), \
                    contextlib.redirect_stderr(sink):
                yield stage
            failed = False
        finally:
            warnings.showwarning = show
            _release_handlers(sink)
            sink.close()
            self._draw(stage, final=True, now=time.time(), failed=failed)


class StageProgressHook(Hook):
    """Report a runner's training iterations and test batches to a
    :class:`Stage` (register it on a built runner:
    ``runner.register_hook(StageProgressHook(stage), 'VERY_LOW')``)."""

    priority = 'VERY_LOW'

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def before_train(self, runner) -> None:
        self.stage.update(runner.iter, runner.max_iters)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self.stage.update(runner.iter + 1, runner.max_iters)

    def before_test(self, runner) -> None:
        self.stage.update(0, len(runner.test_dataloader))

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs=None) -> None:
        self.stage.update(batch_idx + 1, len(runner.test_dataloader))
