# Copyright (c) mmookd contributors. All rights reserved.
"""A background worker with a bounded queue for per-frame post-processing.

Online inference produces, per frame, work that the next frame's network
does not need: waiting for the mask download, RLE encoding at the original
size, video-level assembly. Done on the main thread, it sits on the
critical path between two frames' kernel launches; here it runs on one
worker thread, in submission order, while the main thread launches the
next frame. The queue is bounded (``max_pending``): when the worker falls
behind, :meth:`submit` blocks, so memory never grows with the stream
length (issue 15).
"""
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

__all__ = ['PostprocessWorker']


class PostprocessWorker:
    """One worker thread, FIFO, at most ``max_pending`` jobs in flight.

    Args:
        max_pending (int): Jobs queued or running at most; ``0`` runs every
            job inline in :meth:`submit` (no thread). Defaults to 2.
    """

    def __init__(self, max_pending: int = 2) -> None:
        if max_pending < 0:
            raise ValueError(f'max_pending must be >= 0, got {max_pending}')
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max(max_pending, 1))
        self._executor = None
        if max_pending:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix='mmookd-postprocess')

    def submit(self, fn: Callable[..., Any], *args, **kwargs) -> Future:
        """Run ``fn(*args, **kwargs)`` after every earlier job; blocks while
        ``max_pending`` jobs are in flight."""
        if self._executor is None:
            future: Future = Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as err:  # noqa: B902 - handed to caller
                future.set_exception(err)
            return future
        self._slots.acquire()
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def close(self, wait: bool = True) -> None:
        """Stop the thread (after the queued jobs when ``wait``)."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait)
            self._executor = None

    def __del__(self) -> None:
        try:
            self.close(wait=False)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
