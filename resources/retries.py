"""Retries for steps that talk to external systems: transient errors only (one place).

A step that writes to HBase, Milvus or the MLflow registry carries :data:`EXTERNAL_RETRY` and is
wrapped in :func:`transient_only`. Dagster's ``RetryPolicy`` retries whatever the step raises;
the wrapper lets through only errors that can pass by themselves (a dropped connection, a
timeout, a server that is briefly unavailable) and turns every other error, a failed gate, an
``InputError`` or a bug, into a ``dagster.Failure`` with ``allow_retries=False``: a deterministic
failure fails once, with its message, instead of three more times after 14 s of backoff.
"""

from __future__ import annotations

import functools
import inspect

from dagster import Backoff, Failure, Jitter, RetryPolicy

# HBase, Milvus and the MLflow server can drop a connection or time out under load: retry three
# times, 2 s then 4 s then 8 s (± jitter), before the step fails.
EXTERNAL_RETRY = RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

# gRPC status names (Milvus) and MLflow/HTTP error codes that mean "try again later".
_TRANSIENT_GRPC = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
_TRANSIENT_MLFLOW = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "INTERNAL_ERROR"}
_TRANSIENT_NAMES = {
    "TTransportException",  # thriftpy2 (HBase Thrift): socket closed, timed out
    "MilvusUnavailableException",
    "ConnectTimeout",
    "ReadTimeout",
    "ConnectError",
    "RemoteProtocolError",  # httpx / requests
}


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it was raised from) may pass by itself on a retry.

    Connection and timeout errors of the standard library, of the HBase Thrift transport and of
    the HTTP clients; gRPC errors whose status is UNAVAILABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED or ABORTED; MLflow errors whose code says the server is busy. Everything
    else, including ``dagster.Failure`` and ``ValueError``, is deterministic.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Failure):
            return False
        if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in _TRANSIENT_NAMES:
            return True
        code = getattr(exc, "code", None)
        code = code() if callable(code) else code
        if getattr(code, "name", None) in _TRANSIENT_GRPC:
            return True
        if getattr(exc, "error_code", None) in _TRANSIENT_MLFLOW:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _classify(exc: Exception) -> Exception:
    """What to raise for ``exc``: itself when transient (the policy retries it), else a final Failure."""
    if is_transient(exc):
        return exc
    if isinstance(exc, Failure):
        final = Failure(description=exc.description, metadata=exc.metadata, allow_retries=False)
    else:
        final = Failure(
            description=f"{type(exc).__name__}: {exc} (deterministic: not retried)", allow_retries=False
        )
    return final


def transient_only(fn):
    """Wrap a step's compute function so that its retry policy sees transient errors only.

    Works for plain and generator functions (assets that ``yield`` check results); the signature
    is kept, so Dagster still injects the context, resources and inputs by name.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                if (final := _classify(e)) is e:
                    raise
                raise final from e
    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                if (final := _classify(e)) is e:
                    raise
                raise final from e

    wrapper.transient_only = True
    return wrapper
