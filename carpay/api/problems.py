"""Errors as RFC 9457 problem details: one stable ``type`` URI per :class:`CarpayError` code."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from carpay.errors import (
    BadRequest,
    CarpayError,
    IdempotencyKeyRequired,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "problem_type",
]

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The header every money-moving request must carry; a missing one has its own problem.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: Every problem ``type`` is this followed by the error's code; the page explains the code.
PROBLEM_BASE = "https://carpay.dev/problems/"

#: HTTP errors raised by the framework itself (routing), by status.
_HTTP_ERRORS: dict[int, type[CarpayError]] = {
    400: BadRequest,
    401: Unauthenticated,
    404: NotFound,
    405: MethodNotAllowed,
    422: ValidationFailed,
}


class ProblemError(BaseModel):
    """One thing wrong with the request: where (``loc``) and what (``msg``)."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail, with carpay's ``code`` and, when invalid, ``errors``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    errors: list[ProblemError] | None = None


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


def _title(cls: type[CarpayError]) -> str:
    return (cls.__doc__ or cls.code).strip().splitlines()[0]


def problem_response(
    exc: CarpayError, instance: str | None = None, *, status: int | None = None
) -> JSONResponse:
    """The problem+json response for ``exc``.

    Server-side failures (5xx) say only what kind of failure it was: their messages may name
    internal addresses (a node URL can carry an access key), so they stay in the logs' hands.
    """
    status = status or exc.status
    cls = type(exc)
    body: dict[str, Any] = {
        "type": problem_type(exc.code),
        "title": _title(cls),
        "status": status,
        "detail": _title(cls) if status >= 500 else exc.message,
        "code": exc.code,
    }
    if instance is not None:
        body["instance"] = instance
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = [{"loc": list(e["loc"]), "msg": str(e["msg"])} for e in errors]
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="carpay"'
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problems of ``statuses``."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    described = {
        400: "The request is malformed",
        401: "No valid API key",
        402: "The funds are short",
        403: "The API key lacks the scope",
        404: "No such resource",
        409: "Conflict",
        422: "The request is invalid",
        429: "Too many requests",
        503: "Not available right now",
    }
    return {s: {"description": described.get(s, "A problem"), "content": content} for s in statuses}


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem+json response, the framework's own included."""

    @app.exception_handler(CarpayError)
    async def carpay_error(request: Request, exc: CarpayError) -> JSONResponse:
        if exc.status >= 500:
            # The class and code only: messages of chain errors can carry the node's URL.
            log.error("%s %s failed: %s", request.method, request.url.path, exc.code)
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only where and what: the offending input is not echoed (it may be a secret).
        errors = [
            {
                "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
                "msg": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        if ["header", IDEMPOTENCY_KEY_HEADER.lower()] in [
            [str(p).lower() for p in e["loc"]] for e in exc.errors() if e.get("type") == "missing"
        ]:
            return problem_response(IdempotencyKeyRequired(), request.url.path)
        failed = ValidationFailed("the request is invalid", errors=errors)
        return problem_response(failed, request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        cls = _HTTP_ERRORS.get(exc.status_code)
        error = cls() if cls is not None else BadRequest(str(exc.detail))
        response = problem_response(error, request.url.path, status=exc.status_code)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed(request))
        return response

    app.add_middleware(_Unexpected)


def _allowed(request: Request) -> list[str]:
    """Every method the published API takes at this path (Starlette names one route's only)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


class _Unexpected:
    """Turns an unexpected exception into a bare 500 problem, logged without its message.

    Messages of database and HTTP errors can quote what was sent (a webhook secret, a key
    hash): the log gets the exception's class and where it was raised, not its text.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            where = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "%s %s failed: %s\n%s", scope["method"], scope["path"], type(exc).__name__, where
            )
            if started:  # too late for a problem: the client sees a cut response
                return
            response = problem_response(InternalError(), scope["path"])
            await response(scope, receive, send)
