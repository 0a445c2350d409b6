"""The two ends of the link, by name: one import for the pump process, the programmer and tests.

Each part has its own module; this one only gathers their public names:

* pump_endpoint.py: the pump's end (``PumpEndpoint``, the ordered request checks
  ``REQUEST_CHECKS`` and the table that documents them); pump_connection.py: one link
  (``PumpConnection``); admission.py: what unauthenticated links may cost (``PreAuthBudget``);
* pump_answers.py: the handler's answer checked and fitted to one frame;
* programmer_endpoint.py: the programmer's end (``ProgrammerConnection`` and its events);
* outcomes.py: a command's outcome and the settling of an uncertain one from the event log;
* rate_limit.py: the back-off after failed frames;
* pairing.py: the allow-list (``PairedKey``, the pump's ``Role``); link_state.py: counters and
  kept answers that survive a restart; refusals.py: what the pump logs about a refusal.
"""

from __future__ import annotations

from itb.telemetry.admission import PreAuthBudget
from itb.telemetry.link_state import COUNTER_RESERVE, LINK_STATE_FORMAT, MAX_KEPT_ANSWERS
from itb.telemetry.outcomes import CommandResult, Outcome, Resolution, resolve_uncertain
from itb.telemetry.pairing import (
    MAX_PAIRED_KEYS,
    PATIENT_REQUESTS,
    LinkStateError,
    PairedKey,
    Role,
    key_id_of,
    role_allows,
)
from itb.telemetry.programmer_endpoint import (
    FrameDiscarded,
    HandshakeFailed,
    LinkRefused,
    ProgrammerConnection,
    ProgrammerEvent,
    ResponseReceived,
    SessionOpened,
)
from itb.telemetry.pump_connection import PumpConnection
from itb.telemetry.pump_endpoint import (
    CHALLENGE_LIFETIME_S,
    MAX_PENDING_PREPARES,
    REQUEST_CHECKS,
    PumpEndpoint,
    PumpHandler,
)
from itb.telemetry.rate_limit import FailureLimiter
from itb.telemetry.refusals import RefusalReason, RefusalReport, RefusalSummary

__all__ = [
    "CHALLENGE_LIFETIME_S",
    "COUNTER_RESERVE",
    "LINK_STATE_FORMAT",
    "MAX_KEPT_ANSWERS",
    "MAX_PAIRED_KEYS",
    "MAX_PENDING_PREPARES",
    "PATIENT_REQUESTS",
    "REQUEST_CHECKS",
    "CommandResult",
    "FailureLimiter",
    "FrameDiscarded",
    "HandshakeFailed",
    "LinkRefused",
    "LinkStateError",
    "Outcome",
    "PairedKey",
    "PreAuthBudget",
    "ProgrammerConnection",
    "ProgrammerEvent",
    "PumpConnection",
    "PumpEndpoint",
    "PumpHandler",
    "RefusalReason",
    "RefusalReport",
    "RefusalSummary",
    "Resolution",
    "ResponseReceived",
    "Role",
    "SessionOpened",
    "key_id_of",
    "resolve_uncertain",
    "role_allows",
]  # fmt: skip
