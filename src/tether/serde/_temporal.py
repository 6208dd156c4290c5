"""Plain-data forms of datetime, date, time, timedelta and their tzinfo.

Invariant: only ``datetime.timezone`` (fixed offset, optional name) and ``zoneinfo.ZoneInfo``
(by key) are stored; any other tzinfo is refused at write time rather than stored lossily.
"""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from tether.errors import SerializationError

_US = datetime.timedelta(microseconds=1)
_FIXED = 0
_ZONE = 1


def encode_tz(tz: datetime.tzinfo | None) -> object:
    if tz is None:
        return None
    if type(tz) is datetime.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default_name = datetime.timezone(offset).tzname(None)
        return [_FIXED, offset // _US, None if name == default_name else name]
    if type(tz) is zoneinfo.ZoneInfo and tz.key is not None:
        return [_ZONE, tz.key]
    raise SerializationError(
        f"cannot serialize tzinfo of type {type(tz).__module__}.{type(tz).__qualname__} "
        f"({tz!r}): only datetime.timezone and zoneinfo.ZoneInfo (created by key) are supported"
    )


def decode_tz(data: Any) -> datetime.tzinfo | None:
    if data is None:
        return None
    kind = data[0]
    if kind == _FIXED:
        offset = datetime.timedelta(microseconds=data[1])
        return datetime.timezone(offset) if data[2] is None else datetime.timezone(offset, data[2])
    if kind == _ZONE:
        key = data[1]
        if not isinstance(key, str):
            raise SerializationError(f"invalid stored time zone key {key!r}")
        try:
            return zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise SerializationError(f"unknown time zone {key!r} in stored value") from exc
    raise SerializationError(f"invalid stored tzinfo kind {kind!r}")


def encode_datetime(dt: datetime.datetime) -> list[object]:
    return [
        dt.year,
        dt.month,
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
        dt.microsecond,
        dt.fold,
        encode_tz(dt.tzinfo),
    ]


def decode_datetime(data: Any) -> datetime.datetime:
    y, mo, d, h, mi, s, us, fold, tz = data
    return datetime.datetime(y, mo, d, h, mi, s, us, tzinfo=decode_tz(tz), fold=fold)


def encode_date(d: datetime.date) -> list[object]:
    return [d.year, d.month, d.day]


def decode_date(data: Any) -> datetime.date:
    y, m, d = data
    return datetime.date(y, m, d)


def encode_time(t: datetime.time) -> list[object]:
    return [t.hour, t.minute, t.second, t.microsecond, t.fold, encode_tz(t.tzinfo)]


def decode_time(data: Any) -> datetime.time:
    h, m, s, us, fold, tz = data
    return datetime.time(h, m, s, us, tzinfo=decode_tz(tz), fold=fold)


def encode_timedelta(td: datetime.timedelta) -> list[object]:
    return [td.days, td.seconds, td.microseconds]


def decode_timedelta(data: Any) -> datetime.timedelta:
    d, s, us = data
    return datetime.timedelta(days=d, seconds=s, microseconds=us)
