# Copyright (c) mmookd contributors. All rights reserved.
"""How every tool in ``tools/`` talks to people when something is wrong.

A bad argument, a missing file, an unreadable video, an existing output or
a bad config key is the user's to fix, and a traceback only hides the
sentence that says what to fix. :func:`run_cli` runs a tool's ``main`` and
turns such an error into one line on stderr::

    error: checkpoint not found: work_dirs/x/iter_12000.pth

with exit status 2 (argparse's status for bad arguments, so every input
error of every tool has the same status). Errors of other types are bugs:
they print ``error: internal error: <type>: <message> (rerun with --debug
for the traceback)`` and exit 1. ``--debug`` (every tool's parser has it,
see :func:`add_debug_argument`) lets the exception through with its
traceback.

The tools' ``main`` functions keep raising exceptions, so Python callers
and tests see the real exception; only the command line is wrapped.

Only the standard library is imported here: the dataset generators use
this module before torch and the OpenMMLab stack are importable.
"""
import argparse
import contextlib
import os
import os.path as osp
import sys
import warnings
from typing import Any, Callable, Iterator, List, Optional, Sequence

DEBUG_FLAG = '--debug'
#: exit status of an error in the user's input (as argparse's)
USER_ERROR = 2
#: exit status of an unexpected exception (a bug)
INTERNAL_ERROR = 1
#: exit status after Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130

# Exception types that describe the input, not the code: files and
# folders (OSError), values and data (ValueError, incl. VISDataError and
# JSON errors), config lookups (KeyError: "X is not in the model
# registry"), config values a component rejects (TypeError: mmengine's
# builder reports a bad config key as "class `IDOL` ...: __init__() got an
# unexpected keyword argument 'x'"), failures mmookd and torch report as
# RuntimeError (an unreadable video, a teacher that cannot be built),
# config files that do not parse or import what is missing.
USER_ERROR_TYPES = (OSError, ValueError, KeyError, TypeError, RuntimeError,
                    SyntaxError, ImportError)

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_OWN_CODE = (osp.join(_ROOT, 'mmookd') + os.sep,
             osp.join(_ROOT, 'tools') + os.sep)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug`` (read by :func:`run_cli`) to a tool's parser, so
    that it is listed in ``-h`` and accepted."""
    parser.add_argument(
        DEBUG_FLAG,
        action='store_true',
        help='on an error, show the full traceback instead of one line')


def _one_line(text: str) -> str:
    return ' '.join(part.strip() for part in text.splitlines() if part.strip())


def error_message(exc: BaseException) -> str:
    """The sentence of an exception, on one line, with what caused it.

    ``KeyError('x')`` says ``x``, not ``'x'``; an ``OSError`` from the
    operating system says ``No such file or directory: x.json``; a chained
    cause (``raise ... from err``) is appended unless the message already
    contains it.
    """
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(
            exc.args[0], str):
        text = exc.args[0]
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f'{exc.strerror}: {exc.filename}'
        if exc.filename2:
            text += f' -> {exc.filename2}'
    else:
        text = str(exc)
    text = _one_line(text) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        cause_text = error_message(cause)
        if cause_text not in text:
            text += f' (caused by {type(cause).__name__}: {cause_text})'
    return text


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about the user's input (see
    ``USER_ERROR_TYPES``) rather than a bug."""
    return isinstance(exc, USER_ERROR_TYPES)


def _format_warning(message: Warning, category: type, filename: str,
                    lineno: int) -> Optional[str]:
    """``warning: <message>`` for mmookd's own warnings; ``None`` for
    other libraries' (they keep Python's format with file and line)."""
    if not osp.abspath(filename).startswith(_OWN_CODE):
        return None
    return f'warning: {_one_line(str(message))}\n'


@contextlib.contextmanager
def user_facing_warnings() -> Iterator[None]:
    """Show mmookd's warnings as one ``warning: ...`` line (no source
    line or warning class: they are addressed to the user)."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = _format_warning(message, category, filename, lineno)
        if text is None:
            original(message, category, filename, lineno, file, line)
            return
        stream = sys.stderr if file is None else file
        try:
            stream.write(text)
        except OSError:  # stderr closed: as warnings does, say nothing
            pass

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def run_cli(main: Callable[[List[str]], Any],
            argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main(argv)`` and return its exit status.

    Args:
        main: The tool's entry point; it parses ``argv`` itself and raises
            on errors. An ``int`` it returns is the exit status; anything
            else (a results dict, ``None``) means success.
        argv: The arguments; ``sys.argv[1:]`` by default. With
            ``--debug`` among them exceptions propagate with their
            traceback.

    Returns:
        int: 0 on success, ``main``'s own status, 2 (:data:`USER_ERROR`)
        for an error in the input, 1 (:data:`INTERNAL_ERROR`) for an
        unexpected exception, 130 after Ctrl-C. argparse's own errors
        (``SystemExit``, status 2) pass through unchanged.

    Use as ``sys.exit(run_cli(main))`` under ``if __name__ == '__main__'``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv[:argv.index('--')] if '--' in argv \
        else DEBUG_FLAG in argv
    with user_facing_warnings():
        try:
            result = main(argv)
        except KeyboardInterrupt:
            if debug:
                raise
            print('error: interrupted', file=sys.stderr)
            return INTERRUPTED
        except Exception as exc:  # noqa: BLE001 (the point of this helper)
            if debug:
                raise
            _flush_stdout()
            if is_user_error(exc):
                print(f'error: {error_message(exc)}', file=sys.stderr)
                return USER_ERROR
            print(
                f'error: internal error: {type(exc).__name__}: '
                f'{error_message(exc)} (rerun with {DEBUG_FLAG} for the '
                'traceback)',
                file=sys.stderr)
            return INTERNAL_ERROR
    return result if isinstance(result,
                                int) and not isinstance(result, bool) else 0


def _flush_stdout() -> None:
    """Progress output first, then the error (they share a terminal)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def check_new_file(path: Optional[str], what: str, force: bool) -> None:
    """Refuse to overwrite ``path`` unless ``force``, before any work."""
    if path and osp.exists(path) and not force:
        raise FileExistsError(f'{what} {path} exists already; pass --force '
                              'to overwrite it')


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a plain ``open(path, 'w')`` gives a new file (0644 under
    the usual umask 022)."""
    return 0o666 & ~_current_umask()


def set_default_file_mode(path: str) -> None:
    """Give a file made by :func:`tempfile.mkstemp` (always 0600, to stay
    private while it is written) the mode of an ordinary new file before
    it is published under its real name."""
    os.chmod(path, default_file_mode())


__all__ = [
    'DEBUG_FLAG', 'USER_ERROR', 'INTERNAL_ERROR', 'INTERRUPTED',
    'USER_ERROR_TYPES', 'add_debug_argument', 'error_message', 'is_user_error',
    'user_facing_warnings', 'run_cli', 'check_new_file', 'default_file_mode',
    'set_default_file_mode'
]
