"""What is wrong with a page or a record, said without singer-sdk.

Parsing (`pages.py`) and checking (`records.py`) run in the tap and in its page worker
(`page_worker.py`), a process that imports neither singer-sdk nor requests, so that it
starts in a few tens of milliseconds. They raise these plain errors; the streams raise
them again as the SDK's (`errors.InvalidBodyError`, retried, and `errors.UdemyFatalError`),
wherever the page was parsed.
"""

from __future__ import annotations


class InvalidBody(ValueError):  # noqa: N818 - a finding about a body, not a failure
    """A body that is not JSON (truncated or garbled): worth asking for again."""


class UnusableData(ValueError):  # noqa: N818 - a finding about data, not a failure
    """A page or record no target could load as sent: retrying cannot mend it."""
