"""Process role `dimse` (infra/start/dimse.sh): the DIMSE listener for every tenant (docs/dimse.md)."""

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.dimse.server import dimse_server_start


class Command(BaseCommand):
    help = "Listen for DICOM associations (C-ECHO, C-STORE) on DIMSE_PORT until SIGTERM or SIGINT."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--port", type=int, default=None, help="Default: DIMSE_PORT.")
        parser.add_argument("--bind", default=None, help="Default: DIMSE_BIND_ADDRESS.")

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"] if options["port"] is not None else settings.DIMSE_PORT
        address = options["bind"] or settings.DIMSE_BIND_ADDRESS
        stop = threading.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        server = dimse_server_start(address=address, port=port)
        self.stdout.write(f"DIMSE listening on {address}:{server.server_address[1]}", ending="\n")
        self.stdout.flush()
        stop.wait()
        server.shutdown()
