"""Records against their stream's schema: undocumented fields kept, nothing invalid let out.

The SDK's per-record type conformance is off in this tap (it cost a third of the CPU and
only reshapes Python objects, which parsed JSON never needs). Instead every record is
checked against the stream's schema, compiled once, so nothing that would fail the schema
is ever emitted: a malformed record stops the sync with a clear error.
"""

from __future__ import annotations

import typing as t

import fastjsonschema

from tap_udemy_business.errors import UdemyFatalError

if t.TYPE_CHECKING:
    from collections.abc import Callable

Record = dict[str, t.Any]
#: A record's keys and the types of its values, in order.
Signature = tuple[tuple[str, ...], tuple[type, ...]]
#: The property that keeps fields the API sent but no schema documents.
UNDOCUMENTED = "undocumented_fields"
#: Bound on the record shapes remembered as valid, per stream.
MAX_KNOWN_SHAPES = 4096


class RecordChecker:
    """Checks one stream's records, a page at a time."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        """Compile the schema once; find what can be judged by shape alone."""
        properties: dict[str, t.Any] = schema["properties"]
        self._validate: Callable[[Record], t.Any] = fastjsonschema.compile(
            schema, use_formats=False
        )
        self._documented = frozenset(properties)
        self._integers = frozenset(
            name
            for name, spec in properties.items()
            if "integer" in (spec["type"] if isinstance(spec["type"], list) else [spec["type"]])
        )
        # A flat schema (a type per property and nothing else; formats are not checked)
        # makes a record's validity follow from its keys and the types of its values. A
        # page repeats a handful of such shapes, so each is validated once, not every
        # record. Schemas with nested constraints (courses, learning paths) check all.
        flat = all(
            not spec.get("properties")
            and "items" not in spec
            and spec.get("additionalProperties", True)
            for spec in properties.values()
        )
        self._known: set[Signature] | None = set() if flat else None

    def check(self, records: list[Record], url: str) -> list[Record]:
        """Fold undocumented fields into `undocumented_fields`; validate; return `records`.

        Raises:
            UdemyFatalError: a record does not fit the schema (names the URL and field).
        """
        documented = self._documented
        known = self._known
        shape: frozenset[str] = frozenset()
        extra: tuple[str, ...] = ()
        try:
            for record in records:
                keys = record.keys()
                if keys != shape:  # records of a page mostly share one shape: diff it once
                    shape = frozenset(keys)
                    extra = tuple(sorted(shape - documented))
                if extra:
                    record[UNDOCUMENTED] = dict(zip(extra, map(record.pop, extra), strict=True))
                if known is None:
                    self._validate(record)
                    continue
                signature = (tuple(record), tuple(map(type, record.values())))
                if signature not in known:
                    self._validate(record)
                    self._remember(known, signature)
        except fastjsonschema.JsonSchemaValueException as exc:
            msg = f"Unexpected record from {url}: {exc.message}."
            raise UdemyFatalError(msg) from None
        return records

    def _remember(self, known: set[Signature], signature: Signature) -> None:
        """Cache a validated shape, unless a float stands in an integer field.

        JSON Schema takes 5.0 as an integer but not 5.5: there the value decides, not
        the type, so such records keep being validated one by one.
        """
        names, types = signature
        if any(
            kind is float and name in self._integers
            for name, kind in zip(names, types, strict=True)
        ):
            return
        if len(known) >= MAX_KNOWN_SHAPES:
            known.clear()
        known.add(signature)
