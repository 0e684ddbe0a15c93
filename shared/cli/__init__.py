"""Operator command line on the same pipeline as the function app: ``python -m shared <command>``.

    python -m shared check                      # config, Key Vault, Graph permission, jobs, saved credentials
    python -m shared sync [--target NAME ...] [--secret NAME ...] [--dry-run]
    python -m shared status                     # job status, quarantine, last run, secret expiry

A readable table by default, ``--json`` for scripts. On a laptop it signs in with
``DefaultAzureCredential`` (``az login``); inside Azure (``IDENTITY_ENDPOINT`` set) with the managed
identity. Secret values are never printed. Importing this module loads no Azure SDK.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from .check import SYNC_PERMISSION, run_check
from .common import EXIT_FAILED, EXIT_OK, EXIT_RETRYABLE, EXIT_USAGE, EXPIRY_WARNING_DAYS, Context
from .status import run_status
from .sync import run_sync

EPILOG = f"""\
exit codes (the same outcomes as the HTTP API):
  {EXIT_OK}  success (check: every check passed)                       HTTP 200
  {EXIT_FAILED}  at least one failure that retrying cannot fix            HTTP 422
  {EXIT_USAGE}  usage error, unknown target or secret, or invalid config  HTTP 400/404/500
  {EXIT_RETRYABLE}  at least one failure a retry can fix (throttling, outage,  HTTP 503
     timeout); takes precedence over {EXIT_FAILED}

credentials: --credential default uses DefaultAzureCredential (Azure CLI login on a laptop);
managed-identity uses the Function App's identity (managedIdentityClientId, or the
SYNC_MANAGED_IDENTITY_CLIENT_ID app setting). The default is managed-identity when
IDENTITY_ENDPOINT is set (inside Azure) and default otherwise.

Secret values are never printed: only names, versions, dates and error codes.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as stop:  # --help, or a usage error argparse already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    restore = _logging(args.verbose)
    try:
        return args.run(Context(args, sys.stdout))
    finally:
        restore()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="the SYNC_CONFIG document (a JSON file); default: the SYNC_CONFIG environment variable",
    )
    common.add_argument(
        "--credential",
        choices=("default", "managed-identity"),
        default="managed-identity" if os.environ.get("IDENTITY_ENDPOINT") else "default",
        help="how to sign in (default here: %(default)s)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true", help="show the structured log records on stderr")

    parser = argparse.ArgumentParser(
        prog="python -m shared",
        description="Provisioning Secret Sync operator commands.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,sync,status}")

    def command(
        name: str, run: Callable[[Context], int], help_text: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    command(
        "check",
        run_check,
        "verify config, Key Vault access, the Graph permission, jobs and the jobs' saved credentials",
        "Exit 0 only when the config is valid, every Key Vault secret is readable and usable, "
        f"the Graph token carries {SYNC_PERMISSION}, every service principal and job exists, and "
        "validateCredentials (useSavedCredentials) accepts each job's current credentials. Warns about "
        f"secrets expiring within {EXPIRY_WARNING_DAYS} days.",
    )
    sync = command("sync", run_sync, "sync targets now (the same selection rules and results as POST /api/sync)")
    sync.add_argument("--target", action="append", metavar="NAME", help="a target name (repeatable)")
    sync.add_argument("--secret", action="append", metavar="NAME", help="a Key Vault secret name (repeatable)")
    sync.add_argument("--dry-run", action="store_true", help="resolve and validate, push nothing")
    command("status", run_status, "each target's job status, quarantine reason, last successful run and secret expiry")
    return parser


_PRODUCT_LOGGERS = ("provisioning_secret_sync", "shared")


def _logging(verbose: bool) -> Callable[[], None]:
    """Quiet by default: the product's records would otherwise reach stderr through logging's last-resort
    handler. ``--verbose`` shows them on stderr. Returns what undoes it (main may run in-process)."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in _PRODUCT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if verbose and logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)

    def restore() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)

    return restore

