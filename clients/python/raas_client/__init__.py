"""Typed Python client of the raas API.

    from raas_client import Client
    with Client("http://127.0.0.1:8080", api_key="raas_...") as raas:
        answer = raas.query("How long do I have to ask for a refund?")

`Client` is synchronous, `AsyncClient` the same API with `await`. Both read `RAAS_URL` and
`RAAS_API_KEY` when not given a URL or key.
"""

from raas_client import errors, models
from raas_client._async_client import AsyncClient, AsyncPaginator
from raas_client._core import VERSION, Page, RetryPolicy, parse_retry_after
from raas_client._sync_client import Client, Paginator
from raas_client.errors import ApiError, RaasError
from raas_client.models import DeltaEvent, DoneEvent, RetrievalEvent, StreamEvent

__version__ = VERSION

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncPaginator",
    "Client",
    "DeltaEvent",
    "DoneEvent",
    "Page",
    "Paginator",
    "RaasError",
    "RetrievalEvent",
    "RetryPolicy",
    "StreamEvent",
    "errors",
    "models",
    "parse_retry_after",
]
