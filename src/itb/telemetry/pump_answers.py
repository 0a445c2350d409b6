"""How the pump turns its handler's work into an answer that fits one frame.

The handler (the firmware's adapter) answers a query with its one response type and a command
with ``Accepted`` or ``Rejected``; a firmware refusal raised as a ``ValueError`` with ``field``
and ``reason`` becomes ``Rejected`` (nothing changed). Anything else is a programming error in
the handler and raises ``TypeError``: the pump must never send an answer the programmer cannot
match to its request. An event-log page too large for one frame is trimmed from its end (the
programmer asks again from ``next_seq``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from itb.telemetry.codec import encode_response
from itb.telemetry.messages import ResponseEnvelope
from itb.telemetry.pairing import PairedKey
from itb.telemetry.requests import Command, Interrogate, ReadEventLog, Request
from itb.telemetry.responses import (
    Accepted,
    EventLogPage,
    Refused,
    Rejected,
    Response,
    StatusReport,
)
from itb.telemetry.session import MAX_PLAINTEXT_BYTES

if TYPE_CHECKING:
    from itb.telemetry.pump_endpoint import PumpHandler

EXPECTED_RESPONSES: dict[type[Request], tuple[type[Response], ...]] = {
    Interrogate: (StatusReport,),
    ReadEventLog: (EventLogPage,),
}


def rejected(command: Command, error: ValueError) -> Rejected:
    """The firmware's refusal as the wire's ``Rejected`` (field and reason, bounded)."""
    field_name = str(getattr(error, "field", "request"))[:100] or "request"
    reason = str(getattr(error, "reason", error))[:500] or "refused"
    return Rejected(command.request_id, field_name, reason)


def apply_request(handler: PumpHandler, request: Request, peer: PairedKey) -> Response:
    """The handler's answer to ``request``, checked to be one the programmer expects."""
    try:
        response = handler.handle(request, peer.role, peer.key_id)
    except ValueError as error:  # the firmware's CommandRejected is one
        if not isinstance(request, Command):
            return Refused()
        return rejected(request, error)
    expected = EXPECTED_RESPONSES.get(type(request), (Accepted, Rejected))
    if not isinstance(response, expected):
        raise TypeError(
            f"handler answered {request.type_name} with {type(response).__name__}; "
            f"expected {' or '.join(t.__name__ for t in expected)}"
        )
    if (
        isinstance(response, Accepted | Rejected)
        and isinstance(request, Command)
        and response.request_id != request.request_id
    ):
        raise TypeError("handler answered with another request's request_id")
    return response


def fit_frame(counter: int, response: Response) -> bytes:
    """Encode, trimming an event-log page from its end until it fits one frame."""
    encoded = encode_response(ResponseEnvelope(counter, response))
    while len(encoded) > MAX_PLAINTEXT_BYTES and isinstance(response, EventLogPage):
        if not response.entries:
            raise ValueError("an empty event-log page cannot exceed a frame")
        kept = response.entries[:-1]
        next_seq = kept[-1].seq if kept else response.entries[0].seq - 1
        response = EventLogPage(kept, max(0, next_seq), True, response.lost_count)
        encoded = encode_response(ResponseEnvelope(counter, response))
    if len(encoded) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"{response.type_name} answer larger than one frame")
    return encoded
