"""Credentials never reach what we record: URLs lose their user:password@ and query/fragment values.

Run records (``runs/*.json``), reject details in the manifests and runner info are kept with the
dataset and copied around with it, so a ``captions.base_url`` such as
``https://user:pw@host/v1?token=abc`` must not appear there. This lives in ``stages/`` because
models, stages and pipelines all record URLs and ``stages`` is the package they all import.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
# scheme://anything up to whitespace or a quote: finds URLs inside free text such as error messages.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def _one(url: str) -> str:
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # e.g. a malformed IPv6 host: we cannot tell what is secret, so hide it all
        return REDACTED
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    # Every query value, not only ones named "token": servers use any name (sig, X-Amz-Credential, t, ...).
    query = "&".join(f"{kv.split('=', 1)[0]}={REDACTED}" if "=" in kv else kv
                     for kv in parts.query.split("&")) if parts.query else ""
    fragment = REDACTED if parts.fragment else ""  # OAuth implicit flows put tokens there
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_url(text: str) -> str:
    """``text`` with every URL in it redacted (a bare URL or URLs inside a message); other text unchanged."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL.sub(lambda m: _one(m.group(0)), text)
