"""Reading the next batch while the current one is transformed and merged.

The source driver and the warehouse engines both work outside the GIL, so on
two cores reading batch n+1 overlaps with loading batch n. At most ``depth``
batches wait, so memory stays bounded by the batch size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetched(open_batches: Callable[[], Iterator[T]], depth: int = 1) -> Iterator[T]:
    """The batches of ``open_batches()``, produced in a thread of their own: their connection lives and dies there."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            batches = open_batches()
            try:
                for batch in batches:
                    if not put(batch):
                        return
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
            put(_END)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consuming thread
            put(error)

    producer = threading.Thread(target=produce, name="etl-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
