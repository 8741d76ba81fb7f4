"""``tap-udemy-business-sandbox``: run the sandbox portal from a shell.

For demos and manual testing: point the tap (or curl) at a portal with known data and chosen faults,
no Udemy account needed. It prints the base URL, the credentials and a tap config as one JSON line
(so a script can capture it), then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson

from tap_udemy_business.sandbox.dialects import DIALECTS
from tap_udemy_business.sandbox.faults import RETRY_AFTER_STYLES, FaultParams, parse_schedule
from tap_udemy_business.sandbox.model import DatasetParams
from tap_udemy_business.sandbox.server import SandboxPortal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

# (flag, DatasetParams field, type); unset flags keep the model's defaults.
_DATASET_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("--seed", "seed", int),
    ("--learners", "learners", int),
    ("--courses", "courses", int),
    ("--items-per-course", "items_per_course", int),
    ("--max-enrollments", "max_enrollments", int),
    ("--learning-paths", "learning_paths", int),
    ("--history-days", "history_days", int),
    ("--anonymized-ratio", "anonymized_ratio", float),
    ("--late-ratio", "late_ratio", float),
)
_FAULT_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("--fault-seed", "seed", int),
    ("--latency-ms", "latency_ms", float),
    ("--rate-limit-rps", "rate_limit_rps", float),
    ("--rate-limit-burst", "rate_limit_burst", int),
    ("--error-rate", "error_rate", float),
    ("--truncated-json-rate", "truncated_json_rate", float),
    ("--invalid-json-rate", "invalid_json_rate", float),
    ("--slow-rate", "slow_rate", float),
    ("--slow-seconds", "slow_seconds", float),
    ("--drop-rate", "drop_rate", float),
    ("--foreign-next-rate", "foreign_next_rate", float),
    ("--max-faults-per-url", "max_faults_per_url", int),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tap-udemy-business-sandbox",
        description="Serve a simulated Udemy Business API on this machine.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--organization-id", type=int, default=424242)
    parser.add_argument("--client-id", default="sandbox-client-id")
    parser.add_argument("--client-secret", default="sandbox-client-secret")
    data = parser.add_argument_group("dataset (deterministic from --seed)")
    data.add_argument("--today", type=date.fromisoformat, help="the portal's date, YYYY-MM-DD")
    data.add_argument(
        "--dialect",
        choices=tuple(DIALECTS),
        help="record shapes to serve: the sandbox's own (default), the 2018 guide's tables, "
        "or the shapes observed from real portals",
    )
    for flag, _, kind in _DATASET_FLAGS:
        data.add_argument(flag, type=kind)
    faults = parser.add_argument_group("faults (all off by default)")
    for flag, _, kind in _FAULT_FLAGS:
        faults.add_argument(flag, type=kind)
    faults.add_argument(
        "--error-statuses",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        help="comma-separated statuses for --error-rate (default 500,502,503,524)",
    )
    faults.add_argument(
        "--rate-limit-retry-after",
        choices=RETRY_AFTER_STYLES,
        help="Retry-After in whole seconds, at least 1 (ceil, default) or with a fraction",
    )
    faults.add_argument(
        "--rate-limit-schedule",
        type=parse_schedule,
        help="changes of the limit, SECONDS:RPS,...: e.g. 10:5,20:10 halves a 10 req/s limit "
        "10 s after the first request and restores it at 20 s",
    )
    return parser


def _pick(args: argparse.Namespace, flags: tuple[tuple[str, str, type], ...]) -> dict[str, Any]:
    """The fields whose flags were given, keyed by dataclass field name."""
    values = {field: getattr(args, flag[2:].replace("-", "_")) for flag, field, _ in flags}
    return {field: value for field, value in values.items() if value is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the portal until interrupted.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status (0 after a clean Ctrl-C or SIGTERM).
    """
    args = _parser().parse_args(argv)
    dataset_fields = _pick(args, _DATASET_FLAGS)
    if args.today is not None:
        dataset_fields["today"] = args.today
    if args.dialect is not None:
        dataset_fields["dialect"] = args.dialect
    fault_fields = _pick(args, _FAULT_FLAGS)
    for name in ("error_statuses", "rate_limit_retry_after", "rate_limit_schedule"):
        if getattr(args, name) is not None:
            fault_fields[name] = getattr(args, name)
    try:
        faults = FaultParams(**fault_fields)
    except ValueError as error:
        sys.stderr.write(f"tap-udemy-business-sandbox: {error}\n")
        return 2
    portal = SandboxPortal(
        dataset=DatasetParams(**dataset_fields),
        faults=faults,
        client_id=args.client_id,
        client_secret=args.client_secret,
        organization_id=args.organization_id,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        portal.start()
    except OSError as error:
        sys.stderr.write(
            f"tap-udemy-business-sandbox: cannot listen on {args.host}:{args.port}: {error}\n"
        )
        return 1
    with portal:
        config = orjson.dumps(portal.tap_config()).decode()
        sys.stdout.write(
            f"Sandbox portal serving at {portal.base_url}\n"
            f"organization_id: {portal.organization_id}\n"
            f"client_id: {portal.client_id}\n"
            f"client_secret: {portal.client_secret}\n"
            f"tap config: {config}\n"
            "Press Ctrl-C to stop.\n"
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
