"""`learner_key`: who a learner row is about, on every record shape a portal may send.

No learner field exists on every shape (see `../shared/reference/api-evidence.md`): the 2018
guide sends no learner id at all, real portals send one on user course activity only, and
learners whose personal data was deleted share the e-mail `Anonymized User` and anonymized
names. So the tap derives the key, in this order:

1. `e:<digest>`: a real e-mail, lower-cased, hashed (SHA-256, 20 hex digits). E-mails are
   unique per portal; hashing keeps the address out of the key, so a stream map that drops
   `user_email` for privacy leaves no copy of it behind.
2. `u:<id>`: an anonymized learner whose row carries Udemy's numeric `user_id`.
3. `a:<digest>`: an anonymized learner without an id: a digest of the row's stable facts
   (the stream's `learner_facts`, such as the enrollment date), which differ between learners
   and stay the same when the row is read again. Where all of them are null, the window's
   first day is hashed too, so rows of different windows never merge.

An `a:` key that would repeat one already given in the same request (two anonymized
learners whose facts are all equal) gets `~2`, `~3`, ... appended in the API's order, so no
row is merged into another; the same request read again yields the same suffixes. `e:` and
`u:` keys name one learner: a row sent twice under them (pages that shifted during a read)
is the same row, so it keeps its key and an upserting target merges it. Only `a:` keys are
remembered, so the memory this takes grows with the anonymized rows of one request alone.
"""

from __future__ import annotations

import hashlib
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_udemy_business.records import Record

LEARNER_KEY = "learner_key"
#: The e-mail the API gives learners whose personal data was deleted.
ANONYMIZED_EMAIL = "Anonymized User"
DIGEST_CHARS = 20
#: Bound on the e-mail digests remembered per stream.
MAX_CACHED_EMAILS = 10_000


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


class LearnerKeys:
    """Derives `learner_key` for one stream, one request's records at a time."""

    def __init__(self, key_fields: Sequence[str], learner_facts: Sequence[str]) -> None:
        """Remember which fields, besides the learner, make up the stream's key.

        Args:
            key_fields: the stream's other key fields present in every record (e.g.
                `course_id`); the window fields are the same for a whole request.
            learner_facts: stable facts of a row that tell anonymized learners apart.
        """
        self._key_fields = tuple(key_fields)
        self._facts = tuple(learner_facts)
        self._emails: dict[str, str] = {}

    def stamp(self, records: list[Record], seen: dict[tuple[t.Any, ...], int], window: str) -> None:
        """Set `learner_key` on each record.

        Args:
            records: one page, in the API's order.
            seen: the `a:` keys given so far in this request (its pages share it).
            window: the request's first day, hashed only when a row has no other facts.
        """
        key_fields = self._key_fields
        for record in records:
            key = self.learner(record, window)
            if key.startswith("a:"):
                whole = (key, *(record.get(name) for name in key_fields))
                times = seen.get(whole, 0) + 1
                seen[whole] = times
                if times > 1:
                    key = f"{key}~{times}"
            record[LEARNER_KEY] = key

    def learner(self, record: Record, window: str) -> str:
        """The key of the learner a row is about, before any repeat suffix."""
        email = record.get("user_email")
        if isinstance(email, str) and email.strip() and email != ANONYMIZED_EMAIL:
            key = self._emails.get(email)
            if key is None:
                if len(self._emails) >= MAX_CACHED_EMAILS:
                    self._emails.clear()
                key = self._emails[email] = "e:" + _digest(email.strip().lower())
            return key
        user_id = record.get("user_id")
        if isinstance(user_id, (int, float)) and not isinstance(user_id, bool):
            return f"u:{int(user_id)}"
        facts = [record.get(name) for name in self._facts]
        if all(value is None for value in facts):
            facts.append(window)
        return "a:" + _digest("\x1f".join("" if v is None else str(v) for v in facts))


def stamp_window(
    records: list[Record],
    window: tuple[str, str],
    seen: dict[tuple[t.Any, ...], int],
    learners: LearnerKeys,
) -> None:
    """Give a window's records what the tap derives: the window and their `learner_key`.

    Args:
        records: a page of the window's request, in the API's order.
        window: the request's `from_date` and `to_date`.
        seen: the `a:` keys given so far in this request (its pages share it).
        learners: the stream's `LearnerKeys`.
    """
    for record in records:
        record["from_date"], record["to_date"] = window
    learners.stamp(records, seen, window[0])
