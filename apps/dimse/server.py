"""The DIMSE listener: a pynetdicom application entity whose handlers call apps.dimse.services.

Verification SCP (C-ECHO) and Storage SCP for every storage SOP class pynetdicom knows, in the
common transfer syntaxes (docs/dimse.md). Each association runs in its own pynetdicom thread, with
its own database connection, closed when the association ends.
"""

from __future__ import annotations

import logging
import socket
import weakref
from typing import Any

from django.conf import settings
from django.db import connection
from pydicom import uid
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from apps.dicom.status import FailureReason
from apps.dimse import services

logger = logging.getLogger(__name__)

# The AE title the listener answers with when it has no tenant's to echo (never used for a decision).
LISTENER_AE_TITLE = "IMAGING-CLOUD"
TRANSFER_SYNTAXES = [
    uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1,
    uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.RLELossless,
]

# The grant of each admitted association, for its C-STORE requests.
_grants: weakref.WeakKeyDictionary[Any, services.AssociationGrant] = weakref.WeakKeyDictionary()


def _on_connection_open(event: evt.Event) -> None:
    # DIMSE answers are small messages the peer waits for (C-STORE-RSP): no Nagle delay on them.
    sock = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _on_requested(event: evt.Event) -> None:
    requestor = event.assoc.requestor
    primitive = requestor.primitive
    assert primitive is not None  # EVT_REQUESTED fires once the A-ASSOCIATE-RQ was received
    try:
        grant = services.association_admit(
            called_ae_title=primitive.called_ae_title, calling_ae_title=primitive.calling_ae_title,
            address=requestor.address,
        )
    except services.AssociationRefused as refused:
        logger.info("DIMSE association refused: %s", refused.detail)
        _reject(event, int(refused.result), refused.source, int(refused.reason))
        return
    except Exception:
        # pynetdicom logs a handler's exception and goes on to accept: fail closed instead (the
        # database is unreachable, say), transient so the modality tries again later.
        logger.exception("DIMSE association could not be decided; rejected transient")
        _reject(event, int(services.RejectResult.TRANSIENT), services.SERVICE_USER,
                int(services.RejectReason.NO_REASON_GIVEN))
        return
    # The association answers with the AE title it was called by, the tenant's.
    event.assoc.acceptor.ae_title = grant.tenant.dimse_ae_title
    _grants[event.assoc] = grant


def _reject(event: evt.Event, result: int, source: int, reason: int) -> None:
    event.assoc.acse.send_reject(result, source, reason)
    event.assoc.kill()
    connection.close()


def _on_echo(event: evt.Event) -> int:
    return services.SUCCESS


def _on_store(event: evt.Event) -> int:
    grant = _grants.get(event.assoc)
    if grant is None:  # only admitted associations reach a C-STORE; kept as a refusal, not an error
        return int(FailureReason.PROCESSING_FAILURE)
    return services.instance_receive(grant=grant, part10=event.encoded_dataset())


def _on_association_end(event: evt.Event) -> None:
    _grants.pop(event.assoc, None)
    connection.close()


EVENT_HANDLERS: list[evt.EventHandlerType] = [
    (evt.EVT_CONN_OPEN, _on_connection_open),
    (evt.EVT_REQUESTED, _on_requested),
    (evt.EVT_C_ECHO, _on_echo),
    (evt.EVT_C_STORE, _on_store),
    (evt.EVT_RELEASED, _on_association_end),
    (evt.EVT_ABORTED, _on_association_end),
]


def application_entity() -> AE:
    ae = AE(ae_title=LISTENER_AE_TITLE)
    # The called and calling AE titles are decided per tenant in _on_requested, not by pynetdicom.
    ae.require_called_aet = False
    ae.require_calling_aet = []
    ae.maximum_associations = settings.DIMSE_MAX_ASSOCIATIONS
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.DIMSE_TIMEOUT_SECONDS
    ae.add_supported_context(Verification, TRANSFER_SYNTAXES)
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax is not None:
            ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    return ae


def dimse_server_start(*, address: str, port: int) -> ThreadedAssociationServer:
    """Start listening in background threads; the caller stops it with `.shutdown()`."""
    server = application_entity().start_server((address, port), block=False, evt_handlers=EVENT_HANDLERS)
    assert server is not None  # block=False answers the running server
    return server
