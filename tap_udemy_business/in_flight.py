"""How many pages a read keeps requested ahead of its consumer: as many as keep it fed.

`max_concurrent_requests` is what a slow API needs: at 100 ms a page, eight requests in
flight keep the consumer busy. On a fast one (answers in a millisecond or two) the
consumer, which turns pages into messages, is the bottleneck, and requests beyond the few
that keep it fed buy nothing and cost CPU: every page thread is one more waiting for the
GIL the consumer holds, taking it from the consumer at each socket read, and one more
connection for the API to serve (measured on 2 cores at 0 ms: 8 in flight spend about
0.4 s more CPU than 2 on 218,510 rows, and read them 9-20 % slower).

So the limit is what Little's law asks: the time an answer takes over the time the
consumer spends on a page, plus one, between 2 and the read's usual window. An answer's
time is the least of the latest 16 (the time of the others grows with the threads that
wait for the GIL: with the median, eight in flight would look needed because eight are in
flight); the consumer's is the median of its latest 16 pages. Until 16 of each are known,
and while the rate governor paces the requests (the consumer then waits on the pace, and
the governor's read-ahead holds as it is), the usual window applies.
"""

from __future__ import annotations

import math
import typing as t
from collections import deque

#: Latest answers and pages the limit is computed from.
WINDOW: t.Final = 16
#: Requests kept ahead at least, however fast the API answers: one being read while the
#: consumer works on the page before it, and one more for an answer that comes late.
FEWEST: t.Final = 2


class InFlightLimit:
    """The pages a read may have requested and not yet in, learnt from its answers."""

    def __init__(self, most: int) -> None:
        """Start at `most`, the read's usual window.

        Args:
            most: the most pages the read may have requested and not in (with one request
                at a time, 1: the limit then never changes).
        """
        self.most = most
        self.limit = most
        self._fewest = min(FEWEST, most)
        self._answers: deque[float] = deque(maxlen=WINDOW)
        self._pages: deque[float] = deque(maxlen=WINDOW)

    def took(self, answer: float | None, consumer: float) -> None:
        """Hear how long a page's answer took, and how long the consumer spent on the last.

        Args:
            answer: seconds from the request to its answer (None when not known: a page
                given with its query, say).
            consumer: seconds the consumer spent on the page before, its own work alone.
        """
        if answer is not None:
            self._answers.append(answer)
        self._pages.append(consumer)
        if len(self._answers) < WINDOW or len(self._pages) < WINDOW:
            return
        page = sorted(self._pages)[WINDOW // 2]
        needed = math.ceil(min(self._answers) / page) + 1 if page > 0 else self.most
        self.limit = max(self._fewest, min(self.most, needed))
