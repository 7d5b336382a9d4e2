"""Errors to JSON responses: every refusal names what, where, expected vs got.

| error | status | body |
|---|---|---|
| `InvalidInput`, FastAPI's `RequestValidationError` | 422 | `ValidationErrorBody` |
| `BodyTooLarge`, `TooManyTransactions` | 413 | `TooLargeBody` |
| `UnknownEntity`, unknown route | 404 | `NotFoundBody` |
| other HTTP errors (405, ...) | as raised | `ErrorBody` |
| `ModelNotFound`, `OnlineStoreError`, `BatcherClosed`, any other | 503 | `UnavailableBody` |
| `ServingError` | | |

Anything else is a bug: 500 with the error's type, logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from serving.api.limits import BodyTooLarge
from serving.api.lookup import UnknownEntity
from serving.api.validation import InvalidInput, TooManyTransactions
from serving.errors import ServingError

__all__ = ["error_response", "install_error_handlers"]

_log = logging.getLogger(__name__)


def error_response(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body `{"error": ..., "message": ..., **extra}`."""
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    detail = [
        {"field": p.field, "expected": p.expected, "got": p.got, "message": p.message}
        for p in exc.problems
    ]
    return error_response(422, "invalid request", str(exc), detail=detail)


def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err.get("loc", ())) or "request"
        got = repr(err.get("input"))[:80]
        expected = str(err.get("msg", "a valid value"))
        detail.append(
            {"field": field, "expected": expected, "got": got, "message": f"{field}: {expected}"}
        )
    message = "; ".join(d["message"] for d in detail)
    return error_response(422, "invalid request", message, detail=detail)


def _too_large(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, TooManyTransactions):
        return error_response(413, "too many transactions", str(exc), limit=exc.limit, got=exc.got)
    assert isinstance(exc, BodyTooLarge)
    return error_response(413, "payload too large", str(exc), limit=exc.limit, got=exc.got)


def _unknown_entity(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownEntity)
    return error_response(
        404,
        "unknown entity",
        str(exc),
        entity=exc.entity,
        id=request.path_params.get("entity_id"),
        valid_entities=list(exc.known),
    )


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route {request.url.path!r}; see /docs or /openapi.json"
        return error_response(404, "not found", message)
    headers = dict(exc.headers) if exc.headers else None
    response = error_response(exc.status_code, str(exc.detail).lower(), str(exc.detail))
    if headers:
        response.headers.update(headers)
    return response


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    return error_response(503, "unavailable", str(exc), reasons=[str(exc)])


def _bug(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error serving %s %s", request.method, request.url.path)
    message = f"internal error ({type(exc).__name__}) serving {request.url.path!r}"
    return error_response(500, "internal error", message)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers of the table in the module docstring on `app`."""
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(TooManyTransactions, _too_large)
    app.add_exception_handler(UnknownEntity, _unknown_entity)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ServingError, _unavailable)
    app.add_exception_handler(Exception, _bug)
