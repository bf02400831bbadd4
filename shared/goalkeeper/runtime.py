"""Per-process singletons of a Lambda: created on first use and reused while warm.

Imports here are deferred to first use, so a function's cold start pays only for
what it calls: the evaluation function never loads the API edge (auth), and the
X-Ray SDK is loaded only when tracing is on.
"""

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from goalkeeper.auth import Principal
    from goalkeeper.dal import Dal

Handler = TypeVar("Handler", bound=Callable[..., Any])


@lru_cache(maxsize=1)
def dal() -> "Dal":
    """Every aggregate's data access (goalkeeper.dal), sharing one table and one client;
    the client (and boto3) is created on first use."""
    from goalkeeper.dal import Dal
    from goalkeeper.settings import get_settings

    return Dal.open(get_settings().table_name)


def key_lookup(digest: str) -> "Principal | None":
    from goalkeeper.auth import stored_key_lookup

    return stored_key_lookup(dal().accounts)(digest)


def tracing_enabled() -> bool:
    """Powertools' own rule: on in Lambda unless POWERTOOLS_TRACE_DISABLED (or SAM local)."""
    from aws_lambda_powertools.tracing.tracer import Tracer

    return not Tracer._is_tracer_disabled()


def traced(handler: Handler) -> Handler:
    """Powertools `Tracer().capture_lambda_handler` when tracing is on. Creating a
    Tracer imports the X-Ray SDK and patches botocore even when tracing is off, so
    with tracing off the handler is returned as it is."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    # Powertools types its wrapper Callable[..., Any]; it is called, and answers, as the
    # handler it wraps is.
    return cast(Handler, Tracer().capture_lambda_handler(handler))
