"""Records against their stream's schema: nothing dropped, nothing invalid let out, no stop.

The SDK's per-record type conformance is off in this tap (it cost a third of the CPU and
only reshapes Python objects, which parsed JSON never needs). Instead every record is
checked against the stream's schema, compiled once:

* fields no schema documents are kept in `undocumented_fields`, never dropped;
* a whole number sent as a decimal (`123.0`) in an integer field is emitted as `123`;
* a value that fits none of its field's declared types never stops a sync: the field is
  emitted as null and the value, as sent, goes to `undocumented_fields` under the field's
  name; at the end of the stream one warning per field says how many values were off and
  what they were instead;
* a string under `format: date-time` or `date` that is no date at all (`"not a date"`,
  `"0000-00-00 00:00:00"`) would break targets that parse timestamps: it is emitted as null
  and kept as sent in `undocumented_fields`, with one warning per field at the end;
* only a record without a field its key is built from is fatal: it cannot be loaded.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from collections import Counter, defaultdict, deque
from functools import partial
from itertools import chain, repeat
from operator import is_not, itemgetter, methodcaller, setitem

import fastjsonschema

from tap_udemy_business.data_errors import UnusableData

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection, Iterable

Record = dict[str, t.Any]
#: A record's keys and the types of its values, in order.
Signature = tuple[tuple[str, ...], tuple[type, ...]]
#: The property that keeps fields the API sent but no schema documents.
UNDOCUMENTED = "undocumented_fields"
#: Bound on the record shapes remembered as valid, per stream.
MAX_KNOWN_SHAPES = 4096
_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}


#: An ISO 8601 / RFC 3339 date, optionally with a time and an offset, padding allowed: what
#: targets parse as a timestamp. Calendar-level checks (February 30) are left to them.
_STAMP = (
    r"[ \t]*(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[Tt ](?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d+)?)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)?[ \t]*"
)
_ONE_STAMP = re.compile(_STAMP)
#: A page's values of one field joined by newlines: one C-level match checks them all.
_STAMP_LINES = re.compile(rf"(?:{_STAMP}\n)*{_STAMP}")
#: A value with its digits as zeros: its shape.
_ZEROED = str.maketrans("123456789", "000000000")
#: The forms portals send (`2026-09-06T14:20:53Z`, or a date alone), by shape: where
#: `fromisoformat` also takes every value (so month, day, hour, minutes and seconds are in
#: range, the year is not 0000), each is a `_STAMP` too. A page's shapes take one
#: `translate` and one `split` of its joined values: under half the cost of a regular
#: expression of these forms (14 against 37 µs a page), a fifth of matching `_STAMP`.
_CANONICAL_SHAPES = frozenset(
    {"0000-00-00", "0000-00-00T00:00:00Z"}
    | {f"0000-00-00T00:00:00.{'0' * digits}Z" for digits in range(1, 7)}
)
_DATE_FORMATS = frozenset({"date-time", "date"})
#: Schema keywords that allow or refuse no value (formats are not checked by the validator).
_ANNOTATIONS = frozenset(
    {"$comment", "default", "deprecated", "description", "examples", "format", "title"}
)
_is_not_none = partial(is_not, None)


def json_type(value: t.Any) -> str:
    """The JSON type name of a parsed value (`integer` for whole numbers)."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _types(spec: dict[str, t.Any]) -> list[str]:
    """The JSON types a property allows: its `type`, then its `anyOf` members' types."""
    kind = spec.get("type", [])
    kinds = list(kind) if isinstance(kind, list) else [kind]
    for member in spec.get("anyOf", ()):
        kinds += [name for name in _types(member) if name not in kinds]
    return kinds


def _values_of(names: tuple[str, ...]) -> Callable[[list[Record]], Iterable[t.Any]]:
    """A function giving records' values of `names`, in C-level loops."""
    if len(names) == 1:
        return partial(map, itemgetter(*names))
    get = itemgetter(*names)  # a tuple of values per record

    def values(records: list[Record]) -> Iterable[t.Any]:
        return chain.from_iterable(map(get, records))

    return values


def _stamps(values: list[str], joined: str) -> bool:
    """Whether `joined` (`values` joined by newlines) is one `_STAMP` per value."""
    return joined.count("\n") == len(values) - 1 and _STAMP_LINES.fullmatch(joined) is not None


def _all_dates(
    dated_values: Callable[[list[Record]], Iterable[t.Any]], records: list[Record]
) -> bool:
    """Whether every value of every date field of a page is a date: one match for all."""
    try:
        values = list(filter(_is_not_none, dated_values(records)))
    except KeyError:  # a record lacks one of the fields
        return False
    if not values:
        return True
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1:  # a value holds a newline
        return False
    if set(joined.translate(_ZEROED).split("\n")) <= _CANONICAL_SHAPES:
        try:
            deque(map(dt.datetime.fromisoformat, values), maxlen=0)  # raises if one is not
        except ValueError:
            pass
        else:
            return True
    return _STAMP_LINES.fullmatch(joined) is not None


def _fold_columns(records: list[Record], extra: tuple[str, ...]) -> None:
    """Move the fields `extra`, which every record has, into `undocumented_fields`.

    A column at a time: the pops in a C-level loop, then one small dict per record. A new
    field the API sends is in every record of every page, mostly alone: one field costs a
    third of folding record by record (18 against 50 us a page of 100), several about the
    same (43 against 50 us), as `dict(zip(...))` per record dominates there.
    """
    columns = [list(map(methodcaller("pop", name), records)) for name in extra]
    if len(extra) == 1:
        (name,), (values,) = extra, columns
        kept = [{name: value} for value in values]
    else:
        kept = [dict(zip(extra, values, strict=True)) for values in zip(*columns, strict=True)]
    deque(map(setitem, records, repeat(UNDOCUMENTED), kept), maxlen=0)


def _by_type_alone(spec: dict[str, t.Any]) -> bool:
    """Whether a property's valid values are all the values of its JSON types.

    Only then does a record's validity follow from the types of its values: an `enum`, a
    bound, a pattern, a nested property or an item schema makes it depend on the values.
    """
    constraints = spec.keys() - _ANNOTATIONS - {"type", "anyOf"}
    nested = spec.get("properties") or spec.get("additionalProperties", True) is not True
    if nested or constraints - {"properties", "additionalProperties"}:
        return False
    return all(_by_type_alone(member) for member in spec.get("anyOf", ()))


class RecordChecker:
    """Checks one stream's records, a page at a time, and counts the values it set aside."""

    def __init__(self, schema: dict[str, t.Any], key_fields: Collection[str] = ()) -> None:
        """Compile the schema once; find what can be judged by shape alone.

        Args:
            schema: the stream's JSON Schema.
            key_fields: fields the stream's key is built from: never set aside.
        """
        properties: dict[str, t.Any] = schema["properties"]
        self._properties = properties
        self._validate: Callable[[Record], t.Any] = fastjsonschema.compile(
            schema, use_formats=False
        )
        self._field_validators: dict[str, Callable[[t.Any], t.Any]] = {}
        # A field the API itself calls `undocumented_fields` is folded away like any other.
        self._documented = frozenset(properties) - {UNDOCUMENTED}
        self._essential = frozenset(key_fields) | frozenset(schema.get("required", ()))
        self._integers = frozenset(
            name for name, spec in properties.items() if "integer" in _types(spec)
        )
        #: (field, JSON type seen) -> how many values were set aside.
        self.set_aside: Counter[tuple[str, str]] = Counter()
        #: Fields holding dates or timestamps, which targets parse (tap-added ones aside).
        self._dated = tuple(
            name
            for name, spec in properties.items()
            if spec.get("format") in _DATE_FORMATS and name not in self._essential
        )
        #: A page's values of those fields, record by record (KeyError if one lacks one).
        self._dated_values = _values_of(self._dated) if self._dated else None
        #: field -> how many of its strings were no date, set aside.
        self.undated: Counter[str] = Counter()
        # A flat schema (types per property and nothing else; formats are not checked)
        # makes a record's validity follow from its keys and the types of its values. A
        # page repeats a handful of such shapes, so each is validated once, not every
        # record. Schemas with nested constraints (courses, learning paths) check all.
        flat = all(_by_type_alone(spec) for spec in properties.values())
        self._known: set[Signature] | None = set() if flat else None

    def check(self, records: list[Record], url: str) -> list[Record]:
        """Fold undocumented fields away, mend what does not fit; return `records`.

        Raises:
            UnusableData: a record lacks a field its key is built from (names the URL).
        """
        order = self._fold(records)
        known = self._known
        if known is None:
            for record in records:
                self._check_one(record, url)
        elif order is None or not self._shapes_known(order, records, known):
            for record in records:
                signature = (tuple(record), tuple(map(type, record.values())))
                if signature not in known and self._check_one(record, url):
                    self._remember(known, signature)
        self._check_dates(records)
        return records

    def _fold(self, records: list[Record]) -> tuple[str, ...] | None:
        """Move the fields no schema documents into `undocumented_fields`, in every record.

        Returns:
            The page's one key order once folded, or None if its records differ in it.
        """
        documented = self._documented
        orders = set(map(tuple, records))
        if len(orders) == 1:  # as pages mostly come: look at the keys once
            (order,) = orders
            extra = tuple(sorted(set(order) - documented))
            if extra:
                _fold_columns(records, extra)
                order = (*(name for name in order if name not in extra), UNDOCUMENTED)
            return order
        shape: frozenset[str] = frozenset()
        extra = ()
        for record in records:
            keys = record.keys()
            if keys != shape:  # records of a page mostly share one shape: diff it once
                shape = frozenset(keys)
                extra = tuple(sorted(shape - documented))
            if extra:
                record[UNDOCUMENTED] = dict(zip(extra, map(record.pop, extra), strict=True))
        return None

    @staticmethod
    def _shapes_known(order: tuple[str, ...], records: list[Record], known: set[Signature]) -> bool:
        """Whether every record of a page (all keyed in `order`) has a shape validated before.

        Then each record would pass as it is: the types of the page's values are taken in
        C-level loops, and each of its few shapes looked up once.
        """
        kinds = set(map(tuple, map(map, repeat(type), map(dict.values, records))))
        return all((order, types) in known for types in kinds)

    def _check_dates(self, records: list[Record]) -> None:
        """Set aside strings under a date format that are no date.

        One match checks the whole page; only a page where it fails is looked at field by
        field, and a field that fails record by record.
        """
        dated_values = self._dated_values
        if dated_values is None or _all_dates(dated_values, records):
            return
        # After the type checks these fields hold strings or null only: C-level map/filter.
        for name in self._dated:
            values = list(filter(_is_not_none, map(methodcaller("get", name), records)))
            if not values or _stamps(values, "\n".join(values)):
                continue
            for record in records:
                value = record.get(name)
                if type(value) is str and not _ONE_STAMP.fullmatch(value):
                    self.undated[name] += 1
                    self._set_aside(record, name, value)

    @staticmethod
    def _set_aside(record: Record, name: str, value: t.Any) -> None:
        """Emit the field as null and keep the value, as sent, in `undocumented_fields`."""
        kept = record.get(UNDOCUMENTED) or {}
        kept[name] = value
        record[UNDOCUMENTED] = kept
        record[name] = None

    def _check_one(self, record: Record, url: str) -> bool:
        """Validate one record, mending it if needed; True if it was valid as it came."""
        for name in self._integers:
            value = record.get(name)
            if type(value) is float and value.is_integer():
                record[name] = int(value)
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException:
            self._mend(record, url)
            return False
        return True

    def _mend(self, record: Record, url: str) -> None:
        """Make an invalid record valid without losing anything it carries."""
        for name in self._essential:
            if record.get(name) is None:
                msg = f"A record from {url} has no '{name}', which its key is built from."
                raise UnusableData(msg)
        for name, value in list(record.items()):
            if name == UNDOCUMENTED or name not in self._properties or self._fits(name, value):
                continue
            if name in self._essential:
                msg = (
                    f"A record from {url} has a {json_type(value)} as '{name}', which its "
                    f"key is built from; expected {'/'.join(_types(self._properties[name]))}."
                )
                raise UnusableData(msg)
            self.set_aside[name, json_type(value)] += 1
            self._set_aside(record, name, value)
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:  # the schema itself is off
            msg = f"Unexpected record from {url}: {exc.message}."
            raise UnusableData(msg) from None

    def _fits(self, name: str, value: t.Any) -> bool:
        validate = self._field_validators.get(name)
        if validate is None:
            validate = fastjsonschema.compile(self._properties[name], use_formats=False)
            self._field_validators[name] = validate
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def report(self, stream: str, logger: logging.Logger) -> None:
        """Log one warning per field whose values were set aside, then start counting anew."""
        by_field: dict[str, Counter[str]] = defaultdict(Counter)
        for (name, kind), count in self.set_aside.items():
            by_field[name][kind] += count
        for name, kinds in sorted(by_field.items()):
            expected = "/".join(_types(self._properties[name]))
            seen = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
            logger.warning(
                "Stream '%s': %d values of '%s' were not %s (%s); emitted as null, kept as "
                "sent in %s.%s",
                stream,
                kinds.total(),
                name,
                expected,
                seen,
                UNDOCUMENTED,
                name,
            )
        for name, count in sorted(self.undated.items()):
            logger.warning(
                "Stream '%s': %d values of '%s' were no date or timestamp; emitted as null, "
                "kept as sent in %s.%s",
                stream,
                count,
                name,
                UNDOCUMENTED,
                name,
            )
        self.set_aside.clear()
        self.undated.clear()

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
