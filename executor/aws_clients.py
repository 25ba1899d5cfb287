"""boto3 clients made once per container and reused by later invocations (and calls).

Creating a boto3 client costs about 35 ms of CPU (it loads and parses the service model); a warm
Lambda invocation made several.  ``client()`` hands back the client it made before for the same
service, region, endpoint, config object and explicit credentials, **and** the same AWS
environment: every ``AWS_*`` variable (credentials, profile, region, ``AWS_ENDPOINT_URL_*``) and the
default boto3 session are part of the key, so a client made under one set of credentials (or under
a moto mock, which sets fake ones) is never handed to code running under another.  ``reset()``
forgets them all: ``executor.credentials.clear_cache()`` calls it, and the tests call it wherever a
moto mock starts or stops.  At most ``MAX_CLIENTS`` are kept (the least recently used goes first):
the artifact clients of CodePipeline jobs carry each job's own temporary credentials.

boto3 clients are thread-safe; the cache itself is guarded by a lock.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

MAX_CLIENTS = 32

_CLIENTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_LOCK = threading.Lock()


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))


def client(
    service: str,
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Any = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
) -> Any:
    """``boto3.client(service, ...)``, made once per key (see the module docstring).  ``config`` is
    keyed by identity: pass a module-level ``botocore.config.Config``, not a new one per call."""
    import boto3

    key = (
        service,
        region_name,
        endpoint_url,
        config,  # botocore's Config has no __eq__/__hash__ of its own: identity (the key keeps it alive)
        aws_access_key_id,
        aws_secret_access_key,
        aws_session_token,
        _environment(),
        boto3.DEFAULT_SESSION,  # identity too: boto3.setup_default_session() makes a new one
    )
    with _LOCK:
        found = _CLIENTS.get(key)
        if found is not None:
            _CLIENTS.move_to_end(key)
            return found
    made = boto3.client(
        service,
        region_name=region_name,
        endpoint_url=endpoint_url,
        config=config,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
    )
    # boto3.client() may have just created the default session: key by the one the client came from
    key = (*key[:-1], boto3.DEFAULT_SESSION)
    with _LOCK:
        _CLIENTS[key] = made
        _CLIENTS.move_to_end(key)
        while len(_CLIENTS) > MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
    return made


def reset() -> None:
    """Forget every cached client (the next ``client()`` call makes a new one)."""
    with _LOCK:
        _CLIENTS.clear()
