"""Q2. Decoding a lead, and a page of 100 leads, into typed objects: the SDK vs the alternatives.

Measures CPU time per decode (the process CPU clock) of two payloads, compact JSON as the API
sends it: the seed example lead (tests/data/update-lead-response.json, 2 KB) and a JSON array
of 100 leads derived from it (each with its own ids, counts, dates and column values).

- `inbox_async`: the SDK's `Lead` msgspec Structs (`gc=False`, camelCase renames, datetimes
  parsed), with one `msgspec.json.Decoder` built once, as the SDK decodes responses;
- `pydantic v2`: `model_validate_json` on models built field for field from the SDK's (same
  names, aliases, types, defaults; extra keys ignored), a `TypeAdapter(list[...])` for pages;
- `json.loads+dataclasses`: `json.loads`, then slotted dataclasses with the same fields, built
  by the usual hand-rolled `from_dict` (renames, nested objects, `datetime.fromisoformat`);
  no type checks, unlike the two above;
- `json.loads`, `orjson.loads` and `msgspec.json.decode` to plain dicts: no types at all.

The decoders run interleaved (one timing of each, in rotating order, per repetition), with the
garbage collector on as in an application; each timing is long enough to be steady. Reported:
each alternative's time ÷ the SDK's, per repetition, median and min-max. The typed results are
checked to be equal before timing. Bars: pydantic at least 4x slower than the SDK (goal 5x),
and the SDK faster than msgspec and orjson decoding to plain dicts.

The repair path: a page of about 19 MB of leads (10,800; 2,000 with --quick) through the SDK's
own `decode`, once as sent and once with 1, 10 or 100 leads (spread evenly, the first in the
middle of the page for 1) whose `followerCount` is a string, once with every lead so, and once
with only the last lead so (the worst place for one bad field: strict decoding has built the
whole page when it fails). Strict decoding fails on those and
the repair drops each bad field, so that it takes its default. Reported: each repair's CPU time
÷ the clean page's, timed in rotating order, per repetition, median and min-max. Bar: with 1,
10 or 100 bad fields the repair costs at most 3x a clean decode (the same bar for all three:
the cost must not grow with the number of bad fields); the other two are context.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gc
import json
import operator
import time
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from _harness import (
    ROOT,
    Options,
    Row,
    Spread,
    at_least,
    at_most,
    has,
    parse,
    pin_client,
    ratios,
    report,
    rotations,
    table,
)
from multidict import CIMultiDict, CIMultiDictProxy

from inbox_async import APIResponseValidationError
from inbox_async._decode import decode
from inbox_async._types import Response
from inbox_async.models import Lead

SEED = ROOT / "tests" / "data" / "update-lead-response.json"
SDK = "inbox_async"
PAGE_SIZE = 100
REPAIR_PAGE = 10_800  # leads: about 19 MB
REPAIR_PAGE_QUICK = 2_000
BAD_FIELDS = (1, 10, 100)

Decoder = Callable[[bytes], Any]


# -- payloads -------------------------------------------------------------------------------------


def lead_payload() -> bytes:
    """The seed example, compact as on the wire."""
    return msgspec.json.encode(json.loads(SEED.read_bytes()))


def page_payload(size: int = PAGE_SIZE) -> bytes:
    """A JSON array of `size` leads, each a variation of the seed."""
    seed = json.loads(SEED.read_bytes())
    leads = []
    for i in range(size):
        lead = copy.deepcopy(seed)
        prospect = lead["prospect"]
        prospect["platformId"] = str(100_000_000 + i)
        prospect["documentId"] = 858_224_163 + i
        prospect["username"] = prospect["handle"] = f"user{i}"
        prospect["displayName"] = f"Prospect {i}"
        prospect["followerCount"] = 123 + 37 * i
        prospect["followingCount"] = 17 * i
        prospect["firstSeenAt"] = f"2024-07-{1 + i % 28:02d}T14:08:49.000Z"
        prospect["lastEnrichedAt"] = f"2025-11-{1 + i % 28:02d}T18:03:16.000Z"
        prospect["confidence"] = round(i / size, 2)
        lead["context"]["valuation"] = 100 * i
        lead["data"] = {key: f"{value} {i}" for key, value in lead["data"].items()}
        leads.append(lead)
    return msgspec.json.encode(leads)


# -- the same models for pydantic and dataclasses, derived from the SDK's -----------------------


def _structs(root: type[msgspec.Struct]) -> list[type[msgspec.Struct]]:
    """Every Struct type reachable from `root`, nested ones first."""
    order: list[type[msgspec.Struct]] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if tp in order:
                return
            for f in msgspec.structs.fields(tp):
                visit(f.type)
            order.append(tp)
        for arg in typing.get_args(tp):
            visit(arg)

    visit(root)
    return order


def _translate(tp: Any, mapping: dict[Any, Any]) -> Any:
    """`tp` with every Struct class in it replaced by its counterpart."""
    if isinstance(tp, type) and tp in mapping:
        return mapping[tp]
    origin = typing.get_origin(tp)
    if origin is None:
        return tp
    args = tuple(_translate(arg, mapping) for arg in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, args)
    return origin[args]


def pydantic_lead() -> Any:
    """A pydantic v2 model of Lead, field for field."""
    import pydantic

    config = pydantic.ConfigDict(extra="ignore", populate_by_name=True)
    mapping: dict[Any, Any] = {}
    for cls in _structs(Lead):
        fields: dict[str, Any] = {}
        for f in msgspec.structs.fields(cls):
            tp = _translate(f.type, mapping)
            if f.default_factory is not msgspec.NODEFAULT:
                factory = mapping.get(f.default_factory, f.default_factory)
                fields[f.name] = (tp, pydantic.Field(default_factory=factory, alias=f.encode_name))
            else:
                fields[f.name] = (tp, pydantic.Field(default=f.default, alias=f.encode_name))
        mapping[cls] = pydantic.create_model(f"Pydantic{cls.__name__}", __config__=config, **fields)
    return mapping[Lead]


def _parse_datetime(value: str) -> datetime:
    # fromisoformat reads a trailing "Z" from Python 3.11 on only.
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def dataclass_lead() -> Callable[[dict[str, Any]], Any]:
    """`from_dict` for slotted dataclasses shaped like Lead, as it is usually written."""
    converters: dict[Any, Callable[[Any], Any]] = {}

    def converter(tp: Any) -> Callable[[Any], Any] | None:
        if tp in converters:
            return converters[tp]
        if tp is datetime:
            return _parse_datetime
        origin = typing.get_origin(tp)
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            return converter(inner[0]) if len(inner) == 1 else None
        if origin is list:
            item = converter(typing.get_args(tp)[0])
            if item is not None:
                convert_item = item
                return lambda values: [convert_item(v) for v in values]
        return None

    for cls in _structs(Lead):
        specs = []
        plan = []
        for f in msgspec.structs.fields(cls):
            if f.default_factory is not msgspec.NODEFAULT:
                default = dataclasses.field(default_factory=f.default_factory)
            else:
                default = dataclasses.field(default=f.default)
            specs.append((f.name, Any, default))
            plan.append((f.name, f.encode_name, converter(f.type)))
        made = dataclasses.make_dataclass(f"Data{cls.__name__}", specs, slots=True)
        converters[cls] = _from_dict(made, plan)
    return converters[Lead]


def _from_dict(
    made: type, plan: list[tuple[str, str, Callable[[Any], Any] | None]]
) -> Callable[[dict[str, Any]], Any]:
    def from_dict(data: dict[str, Any]) -> Any:
        kwargs = {}
        for name, key, convert in plan:
            if key in data:
                value = data[key]
                kwargs[name] = value if convert is None or value is None else convert(value)
        return made(**kwargs)

    return from_dict


def _plain(obj: Any) -> Any:
    """Nested builtins of any of the typed results, to check they agree."""
    if isinstance(obj, msgspec.Struct):
        return {f: _plain(getattr(obj, f)) for f in obj.__struct_fields__}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump"):
        return {k: _plain(getattr(obj, k)) for k in type(obj).model_fields}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


# -- decoders -------------------------------------------------------------------------------------


def decoders(page: bool) -> dict[str, Decoder]:
    """Name -> bytes-to-objects function, for one lead or for a page (a list of leads)."""
    found: dict[str, Decoder] = {}
    sdk = msgspec.json.Decoder(list[Lead] if page else Lead)
    found[SDK] = sdk.decode
    if has("pydantic"):
        import pydantic

        model = pydantic_lead()
        if page:
            found["pydantic v2"] = pydantic.TypeAdapter(list[model]).validate_json  # type: ignore[valid-type]
        else:
            found["pydantic v2"] = model.model_validate_json
    from_dict = dataclass_lead()
    if page:
        found["json.loads+dataclasses"] = lambda b: [from_dict(d) for d in json.loads(b)]
    else:
        found["json.loads+dataclasses"] = lambda b: from_dict(json.loads(b))
    found["msgspec→dicts"] = msgspec.json.decode
    if has("orjson"):
        import orjson

        found["orjson→dicts"] = orjson.loads
    found["json.loads→dicts"] = json.loads
    return found


def check(found: dict[str, Decoder], payload: bytes) -> None:
    """The typed decoders must produce the same values, or the comparison is meaningless."""
    expected = _plain(found[SDK](payload))
    for name in ("pydantic v2", "json.loads+dataclasses"):
        if name in found and _plain(found[name](payload)) != expected:
            raise AssertionError(f"{name} decodes the payload differently from the SDK")


def per_call(decode: Decoder, payload: bytes, number: int) -> float:
    """CPU seconds per call over `number` calls."""
    gc.collect()
    started = time.process_time()
    for _ in range(number):
        decode(payload)
    return (time.process_time() - started) / number


def calibrate(decode: Decoder, payload: bytes, target: float) -> int:
    """Calls that take about `target` seconds."""
    number = 1
    while True:
        spent = per_call(decode, payload, number) * number
        if spent >= 0.02:
            return max(1, int(number * target / spent))
        number *= 4


# -- the repair path --------------------------------------------------------------------------


def repair_payloads(size: int) -> dict[str, bytes]:
    """A page of `size` leads as sent, and with wrong-typed fields in some or all of its leads."""
    clean = page_payload(size)
    leads = json.loads(clean)
    found = {"clean": clean}
    for bad in (*BAD_FIELDS, size):
        doc = copy.deepcopy(leads)
        step = size // bad
        for n in range(bad):
            # A string where a count belongs: the body stays the same size, give or take.
            doc[step // 2 + n * step]["prospect"]["followerCount"] = "many"
        name = "every lead" if bad == size else f"{bad} bad field{'s' if bad > 1 else ''}"
        found[name] = msgspec.json.encode(doc)
    # Strict decoding stops at the first bad field, and what it built up to there is lost: the
    # worst place for a single one is the end of the body.
    doc = copy.deepcopy(leads)
    doc[-1]["prospect"]["followerCount"] = "many"
    found["1 bad field, last lead"] = msgspec.json.encode(doc)
    return found


def sdk_decode(body: bytes) -> Callable[[], object]:
    """The SDK's own decode of a page of leads, the repair included; a give-up is timed too."""
    response = Response(200, CIMultiDictProxy(CIMultiDict()), body)
    tp: Any = list[Lead]

    def run() -> object:
        try:
            return decode(response, tp)
        except APIResponseValidationError as exc:
            return exc

    return run


def repair_rows(options: Options, reps: int) -> tuple[list[Row], list[Row], list[str]]:
    """Time the clean page and each repaired one, interleaved; rows of ratios and of ms."""
    size = REPAIR_PAGE_QUICK if options.quick else REPAIR_PAGE
    payloads = repair_payloads(size)
    runs = {name: sdk_decode(body) for name, body in payloads.items()}
    notes = []
    for name, run in runs.items():
        result = run()  # warm up: decoders and repair plans are built on first use
        if isinstance(result, APIResponseValidationError):
            notes.append(f"repair, {name}: decode raised ({result})")
        elif name != "clean":
            assert isinstance(result, list)
            bad = sum(lead.prospect.follower_count is None for lead in result)
            if bad != (size if name == "every lead" else int(name.split()[0])):
                raise AssertionError(f"{name}: {bad} leads lost their followerCount")
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _, order in rotations(list(runs), reps):
        for name in order:
            gc.collect()
            started = time.process_time()
            runs[name]()
            times[name].append(time.process_time() - started)
    megabytes = len(payloads["clean"]) / 1e6
    rows, details = [], []
    for name in runs:
        ms = Spread.of([t * 1e3 for t in times[name]])
        details.append(Row.of("Q2", f"repair page ({megabytes:.1f} MB): {name}", ms, "ms"))
        if name != "clean":
            ratio = ratios(times[name], times["clean"])
            what = f"repair, {name} ÷ clean ({size:,} leads, {megabytes:.1f} MB)"
            if name in ("every lead", "1 bad field, last lead"):
                rows.append(Row.of("Q2", what, ratio, "x", "context"))
            else:
                rows.append(Row.of("Q2", what, ratio, "x", "≤ 3x", at_most(ratio.median, 3.0)))
    return rows, details, notes


def main(options: Options) -> None:
    """Time every decoder on both payloads and report the ratios."""
    client_pinning = pin_client()
    reps = options.reps or (3 if options.quick else 7)
    target = 0.03 if options.quick else 0.1
    rows: list[Row] = []
    details: list[Row] = []
    for label, payload, page in (
        ("lead", lead_payload(), False),
        (f"page of {PAGE_SIZE}", page_payload(), True),
    ):
        found = decoders(page)
        check(found, payload)
        numbers = {name: calibrate(fn, payload, target) for name, fn in found.items()}
        times: dict[str, list[float]] = {name: [] for name in found}
        for _, order in rotations(list(found), reps):
            for name in order:
                times[name].append(per_call(found[name], payload, numbers[name]))
        for name in found:
            us = Spread.of([t * 1e6 for t in times[name]])
            details.append(Row.of("Q2", f"{label} ({len(payload):,} B): {name}", us, "µs"))
        for name in found:
            if name == SDK:
                continue
            ratio = ratios(times[name], times[SDK])
            if name == "pydantic v2":
                bar, verdict = "≥ 4x (goal 5x)", at_least(ratio.median, 4.0, 5.0)
            elif name in ("msgspec→dicts", "orjson→dicts"):
                bar, verdict = "> 1x", at_least(ratio.median, 1.0 + 1e-9)
            else:
                bar, verdict = "context", ""
            rows.append(Row.of("Q2", f"{label}: {name} ÷ inbox_async", ratio, "x", bar, verdict))
    repaired, repair_details, notes = repair_rows(options, reps)
    rows += repaired
    missing = [m for m in ("pydantic", "orjson") if not has(m)]
    if missing:
        notes.append(f"not installed, skipped: {', '.join(missing)}")
    report(
        "Q2 decoding into typed objects",
        rows,
        options,
        details=[
            f"{reps} interleaved repetitions, CPU time per decode",
            "",
            table(details),
            "",
            table(repair_details),
        ],
        notes=notes,
        client_pinning=client_pinning,
    )


if __name__ == "__main__":
    main(parse(__doc__))
