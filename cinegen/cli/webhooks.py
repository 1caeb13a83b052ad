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
