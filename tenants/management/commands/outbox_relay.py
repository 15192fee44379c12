"""`manage.py outbox_relay`: publish the task intents that are still unsent (tenants.outbox).

It needs only the database, so it keeps running while the broker is away (a Celery beat task could
not) and catches up as soon as the broker answers again. Several may run side by side. It is a
process role of its own: `infra/start/relay.sh`, started by the launcher beside web, worker and beat.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.outbox import outbox_relay_once, outbox_relay_run


class Command(BaseCommand):
    help = "Publish unsent task intents from the outbox, forever (or one pass with --once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, print how many were sent, and exit.")
        parser.add_argument("--interval", type=float, default=None,
                            help="Seconds between passes (default OUTBOX_RELAY_INTERVAL_SECONDS).")
        parser.add_argument("--heartbeat-file", default=None,
                            help="A file touched after every pass, for a health check to look at its age.")

    def handle(self, *args: object, **options: Any) -> None:
        if options["once"]:
            result = outbox_relay_once()
            self.stdout.write(f"sent {result.sent}, failed {result.failed}")
            return
        stopping = False

        def stop(signal_number: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("outbox relay: running", ending="\n")
        self.stdout.flush()
        heartbeat = Path(options["heartbeat_file"]) if options["heartbeat_file"] else None
        outbox_relay_run(should_stop=lambda: stopping, interval_seconds=options["interval"],
                         after_pass=heartbeat.touch if heartbeat else None)
