"""The exporter-owned event loop: one named daemon thread running ``asyncio`` for the async path.

Name lookups (``getaddrinfo``) run on the loop's executor; at interpreter exit, when no executor
accepts work any more, they run inline, so the last records still reach a server named by host.

The sender runs its task here; a thread that runs an event loop of its own can still export, since
the work never runs on the caller's loop. ``stop`` runs a closing coroutine on the loop, cancels
and drains what is left, stops the loop and joins the thread, all within its timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_NAME = "otel-redis-exporter-loop"


class _ExitSafeExecutor(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that runs a call inline once it refuses work (at interpreter exit)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        try:
            return super().submit(fn, *args, **kwargs)
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
            return future


class LoopThread:
    """An asyncio event loop on a daemon thread of its own, started lazily."""

    def __init__(self, name: str = THREAD_NAME) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use."""
        with self._lock:
            if self._loop is None:
                self._loop, self._thread = self._start()
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _start(self) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        loop = asyncio.new_event_loop()
        resolver = _ExitSafeExecutor(max_workers=1, thread_name_prefix=f"{self._name}-resolver")
        loop.set_default_executor(resolver)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        return loop, thread

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Schedule ``callback`` on the loop if it is running; no-op otherwise."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                if self.in_loop_thread():
                    loop.call_soon(callback)  # no wake-up byte for a loop that is awake
                else:
                    loop.call_soon_threadsafe(callback)

    def stop(self, closer: Callable[[], Coroutine[Any, Any, object]] | None, timeout_s: float) -> bool:
        """Run ``closer()`` on the loop, cancel the rest, stop the loop and join its thread.

        Returns True when the thread ended within ``timeout_s``.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return True
        deadline = time.monotonic() + timeout_s

        async def finish() -> None:
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
            current = asyncio.current_task()
            rest = [task for task in asyncio.all_tasks() if task is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            await loop.shutdown_asyncgens()

        future = asyncio.run_coroutine_threadsafe(finish(), loop)
        with contextlib.suppress(Exception):
            future.result(max(deadline - time.monotonic(), 0))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            return False
        loop.close()
        return True

    def abandon(self) -> None:
        """Forget the loop without touching it: after ``fork()`` it belongs to the parent."""
        keep_after_fork(self._loop)
        self._lock = threading.Lock()
        self._loop = self._thread = None


# A forked child shares the parent's epoll instance. Collecting the parent's loop or transports
# in the child would unregister the parent's sockets from it, so the child keeps them forever.
_FORK_ORPHANS: list[object] = []


def keep_after_fork(*objects: object) -> None:
    """Never collect ``objects`` in this (forked child) process."""
    _FORK_ORPHANS.extend(obj for obj in objects if obj is not None)
