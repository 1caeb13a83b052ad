"""`GET /.well-known/jwks.json`: the public keys that sign dynamic webhook deliveries.

Spec gemini-webhooks §5.4 / §7 #15: receivers of `webhookConfig.uris` deliveries verify the
RS256 JWT in `webhook-signature` against `{base}/.well-known/jwks.json`, as Google's samples do
against generativelanguage.googleapis.com. Unauthenticated (a receiver has no API key), and
cacheable for 5 minutes: a rotation (`cinegen webhooks rotate-jwks-key`) publishes the new key
that long before it signs with it, and a retired key stays listed for an hour after its last
use (service/webhook_crypto.py), so a cached copy always has the key a live token needs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cinegen.api.runtime import runtime
from cinegen.service.webhook_crypto import JWKS_MAX_AGE_SECONDS, jwt_signer

router = APIRouter()
CACHE_CONTROL = f"public, max-age={JWKS_MAX_AGE_SECONDS}"


@router.get("/.well-known/jwks.json")
def jwks(request: Request) -> JSONResponse:
    keys = jwt_signer(runtime(request).settings).jwks()
    return JSONResponse(keys, headers={"Cache-Control": CACHE_CONTROL})
