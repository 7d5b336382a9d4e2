"""Request bodies to `Transaction`s, checked against the Avro contract, with per-field problems.

Validation is the contract's own JSON reader (`schemas._json_input.to_datum` on the
packaged `Transaction` schema): field names, types, enum symbols, `event_time` as epoch
milliseconds or an ISO-8601 string with a timezone. On top of it the API refuses what JSON
itself does not allow and a model cannot score: `NaN`/`Infinity` literals, numbers that
overflow a double, and strings that are not valid Unicode. Like JSON (and JSON Schema), it
has one number type: an integral literal such as `1000.0` or `1e3` is the integer 1000
(exactly the same double in a `double` field; accepted in a `long` one).

Every refusal is an `InvalidInput` holding `Problem`s (field path, expected, got), which
the app returns as a 422.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas._json_input import FieldError, to_datum
from schemas.contracts import codec_for
from schemas.errors import ContractError
from schemas.records import Transaction
from serving.errors import ServingError

__all__ = [
    "BATCH_FIELD",
    "InvalidInput",
    "Problem",
    "TooManyTransactions",
    "parse_batch",
    "parse_json",
    "parse_transaction",
]

BATCH_FIELD = "transactions"
_EXACT = 2**53  # integral doubles below this are exact integers
_ROOT = "body"
_MESSAGE = re.compile(
    r"^(?:field (?P<q>['\"])(?P<path>.*?)(?P=q)|record (?P<record>[\w.]+)|value): (?P<rest>.*)$",
    re.DOTALL,
)
_EXPECTED = re.compile(r"^expected (?P<expected>.*?), got (?P<got>.*)$", re.DOTALL)
_UNKNOWN = re.compile(r"^unknown field\(s\) (?P<names>\[.*?\]); (?P<rest>.*)$", re.DOTALL)
_MISSING = re.compile(r"^missing required field \(type (?P<type>.*)\)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a body was refused: where, what was expected, what came."""

    field: str
    expected: str
    got: str
    message: str


class InvalidInput(ServingError):  # noqa: N818 - names the condition (422)
    """A request body does not fit the contract; `problems` name the fields."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))


class TooManyTransactions(ServingError):  # noqa: N818 - names the condition (413)
    """A batch carries more transactions than the API takes in one request."""

    def __init__(self, got: int, limit: int) -> None:
        self.got = got
        self.limit = limit
        super().__init__(f"field {BATCH_FIELD!r}: expected at most {limit} transactions, got {got}")


def _non_finite(text: str) -> float:
    msg = f"non-finite number {text!r} (JSON has no NaN or Infinity)"
    raise ValueError(msg)


def _number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        msg = f"number {text[:40]!r} overflows a double"
        raise ValueError(msg)
    if value.is_integer() and abs(value) < _EXACT and (value != 0 or math.copysign(1, value) > 0):
        return int(value)  # JSON has one number type: 1000.0 is the integer 1000
    return value


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`; `InvalidInput` for anything strict JSON does not allow."""
    try:
        return json.loads(body, parse_constant=_non_finite, parse_float=_number)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ours
        detail = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        got = f"invalid JSON: {detail}" if body.strip() else "an empty body"
        msg = f"{_ROOT}: expected a JSON document, got {got}"
        raise InvalidInput([Problem(_ROOT, "a JSON document", got, msg)]) from exc


_CODEC = codec_for("Transaction")
_SCHEMA = _CODEC.schema
_NAMED: Mapping[str, Any] = _SCHEMA.get("__named_schemas", {})


def parse_transaction(value: Any, *, path: str = "") -> Transaction:
    """The `Transaction` in a decoded JSON value; `path` prefixes problem field paths."""
    try:
        datum = to_datum(_SCHEMA, value, named=_NAMED, from_json=True)
    except FieldError as exc:
        raise InvalidInput([_problem(str(exc), path)]) from exc
    except OverflowError as exc:  # an integer too large for a double, a timestamp off the calendar
        where = _join(path, _overflowing_field(value))
        msg = f"field {where!r}: expected a value in range, got {exc}"
        raise InvalidInput([Problem(where, "a value in range", str(exc), msg)]) from exc
    for name, field_value in datum.items():
        if isinstance(field_value, str) and not _is_unicode(field_value):
            where = _join(path, name)
            msg = f"field {where!r}: expected a valid Unicode string, got a lone surrogate"
            raise InvalidInput([Problem(where, "valid Unicode string", "lone surrogate", msg)])
    try:
        return Transaction.from_avro(datum)
    except (ContractError, ValueError, KeyError) as exc:  # defensive: the contract said yes
        problem = _problem(f"value: expected a Transaction, got {exc}", path)
        raise InvalidInput([problem]) from exc


def parse_batch(value: Any, *, limit: int) -> list[Transaction]:
    """The transactions of a batch body `{"transactions": [...]}`, every problem named.

    More than `limit` transactions is `TooManyTransactions` (checked before any is parsed).
    """
    if not isinstance(value, dict) or set(value) != {BATCH_FIELD}:
        if isinstance(value, dict):
            got = f"an object with keys {sorted(value)[:10]!r}"
        else:
            got = _kind(value)
        expected = f'an object {{"{BATCH_FIELD}": [Transaction, ...]}}'
        msg = f"{_ROOT}: expected {expected}, got {got}"
        raise InvalidInput([Problem(_ROOT, expected, got, msg)])
    items = value[BATCH_FIELD]
    if not isinstance(items, list) or not items:
        got = "an empty array" if isinstance(items, list) else _kind(items)
        expected = f"an array of 1 to {limit} transactions"
        msg = f"field {BATCH_FIELD!r}: expected {expected}, got {got}"
        raise InvalidInput([Problem(BATCH_FIELD, expected, got, msg)])
    if len(items) > limit:
        raise TooManyTransactions(len(items), limit)
    out: list[Transaction] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        try:
            out.append(parse_transaction(item, path=f"{BATCH_FIELD}[{i}]"))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)
    return out


def _overflowing_field(value: Any) -> str:
    """The name of the first field of `value` whose conversion overflows ('' if none does)."""
    for field in _SCHEMA["fields"]:
        name = field["name"]
        if isinstance(value, Mapping) and name in value:
            try:
                to_datum(field["type"], value[name], named=_NAMED, from_json=True)
            except OverflowError:
                return str(name)
            except FieldError:
                continue
    return ""


def _kind(value: Any) -> str:
    """The JSON kind of a decoded value, for messages."""
    if value is None:
        return "null"
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path or _ROOT
    return f"{prefix}.{path}" if path else prefix


def _names(text: str) -> list[str]:
    """The field names in a message's `['a', 'b']` list (empty when it is not one)."""
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _problem(message: str, prefix: str) -> Problem:
    """A `Problem` from a contract error message (`field 'x': expected E, got G` and kin)."""
    match = _MESSAGE.match(message)
    if match is None:
        where = prefix or _ROOT
        return Problem(where, "a Transaction", message, f"{where}: {message}")
    path = _join(prefix, match["path"] or "")
    rest = match["rest"]
    if (expected := _EXPECTED.match(rest)) is not None:
        exp, got = expected["expected"], expected["got"]
    elif (unknown := _UNKNOWN.match(rest)) is not None:
        names = _names(unknown["names"])
        path = _join(prefix, ", ".join(names)) if names else path
        exp, got = f"only known fields ({unknown['rest']})", f"unknown field(s) {names!r}"
    elif (missing := _MISSING.match(rest)) is not None:
        exp, got = f"{missing['type']} (required)", "nothing"
    else:
        exp, got = "a Transaction", rest
    where = f"field {path!r}" if path != _ROOT else _ROOT
    return Problem(path, exp, got, f"{where}: {rest}")
