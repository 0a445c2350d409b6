"""Why the pump refused a frame, and what it logs about it (never what it tells the peer).

The peer learns nothing beyond "refused" (a plaintext REFUSAL frame, or a sealed ``Refused``):
a forger gets no hint which check failed. The pump's own event log gets the whole
:class:`RefusalReport` (kind ``"link_refused"``), so a clinician can see an attack or a
misconfigured programmer afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from itb.telemetry.pairing import Role
from itb.telemetry.validation import JSON


class RefusalReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    MALFORMED_FRAME = "malformed_frame"
    UNEXPECTED_FRAME = "unexpected_frame"
    UNKNOWN_KEY = "unknown_key"
    NO_SESSION = "no_session"
    NOT_AUTHENTIC = "not_authentic"
    MALFORMED_MESSAGE = "malformed_message"
    REQUEST_ID_REUSED = "request_id_reused"
    REPLAYED_COUNTER = "replayed_counter"
    ROLE_FORBIDDEN = "role_forbidden"
    NEEDS_PREPARE = "needs_prepare"
    BAD_COMMIT = "bad_commit"


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """What the pump should log about a refused frame (never sent to the peer)."""

    reason: RefusalReason
    detail: str
    key_id: str | None = None
    role: Role | None = None
    request_type: str | None = None
    request_id: str | None = None
    failures_total: int = 0
    dropped_since_last_report: int = 0

    def to_log_data(self) -> dict[str, JSON]:
        """The ``data`` of the pump's event-log entry (kind ``"link_refused"``)."""
        data: dict[str, JSON] = {"reason": self.reason.value, "detail": self.detail}
        for name in ("key_id", "request_type", "request_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.role is not None:
            data["role"] = self.role.value
        data["failures_total"] = self.failures_total
        if self.dropped_since_last_report:
            data["dropped_since_last_report"] = self.dropped_since_last_report
        return data


def with_total(report: RefusalReport, failures_total: int) -> RefusalReport:
    """``report`` with the pump's running count of refused frames."""
    return replace(report, failures_total=failures_total)
