"""`cinegen webhooks …`: webhook upkeep on this machine's data directory, never over HTTP.

`rotate-jwks-key` makes a new RSA key for the JWTs of dynamic deliveries (`webhookConfig.uris`,
spec gemini-webhooks §5.4). It is published in `/.well-known/jwks.json` at once and signs from
5 minutes later (the JWKS's cache lifetime, so receivers' cached copies have it first); with
`--now` it signs at once (a leaked key: receivers holding an older copy refuse deliveries until
they refetch, and those deliveries are retried). Every server process on this data directory
follows; the previous key stays published for an hour after its last use.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cinegen.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    webhooks = sub.add_parser("webhooks", help="webhook signing keys and deliveries")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    rotate = webhooks_sub.add_parser(
        "rotate-jwks-key", help="a new key for dynamic deliveries' JWTs (published first)"
    )
    rotate.add_argument(
        "--now", action="store_true", help="sign with it at once, not after 5 minutes"
    )
    rotate.set_defaults(func=cmd_rotate_jwks_key)
    deliveries = webhooks_sub.add_parser(
        "deliveries", help="a webhook's deliveries, newest first, with their last answer"
    )
    deliveries.add_argument("webhook_id")
    deliveries.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    deliveries.set_defaults(func=cmd_deliveries)
    resend = webhooks_sub.add_parser("resend", help="send a delivery again (same webhook-id)")
    resend.add_argument("webhook_id")
    resend.add_argument("delivery_id")
    resend.set_defaults(func=cmd_resend)


def cmd_rotate_jwks_key(args: argparse.Namespace) -> int:
    """The new `kid` on stdout, what happens next on stderr."""
    from cinegen.service.webhook_crypto import (
        ROTATION_GRACE_SECONDS,
        ROTATION_LEAD_SECONDS,
        jwt_signer,
    )

    lead = 0.0 if args.now else ROTATION_LEAD_SECONDS
    kid = jwt_signer(Settings()).rotate(lead)
    print(kid)
    when = "from now on" if args.now else f"in {int(lead // 60)} min"
    print(
        f"(new JWT signing key {kid}, in /.well-known/jwks.json now: it signs {when}; the "
        f"previous key stays published {int(ROTATION_GRACE_SECONDS // 60)} min after that)",
        file=sys.stderr,
    )
    return 0


def _delivery_service(webhook_id: str) -> tuple[Any, str | None]:
    """The deliveries of this data directory, and the webhook's owner (any tenant's: this
    is the operator's view); SystemExit if there is no such webhook."""
    from cinegen.cli.serve import local_database
    from cinegen.service.deliveries import DeliveryService

    service = DeliveryService(local_database(Settings()))
    hook = service.outbox.webhook(webhook_id)
    if hook is None:
        raise SystemExit(f"error: no webhook {webhook_id}")
    return service, hook.owner


def cmd_deliveries(args: argparse.Namespace) -> int:
    """One line a delivery: id, state, attempts, event, last answer, when it was made."""
    service, owner = _delivery_service(args.webhook_id)
    items, _next = service.page(owner, args.webhook_id, max(1, args.limit), None)
    for item in items:
        answer = item.get("last_status") or item.get("last_error") or "-"
        print(
            f"{item['id']}  {item['state']:9}  {item['attempt_count']:2} attempt(s)  "
            f"{item['event_type']:15}  {answer}  {item['create_time']}"
        )
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    """Queue the delivery again; a running server sends it at its next look (≤ 1 s)."""
    service, owner = _delivery_service(args.webhook_id)
    item = service.resend(owner, args.webhook_id, args.delivery_id)
    print(f"{item['id']}  {item['state']}  (webhook-id {item['message_id']})")
    return 0
