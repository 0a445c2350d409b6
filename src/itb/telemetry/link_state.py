"""What the pump remembers about its link: the counter ceiling, kept answers, prepared commands.

Theory of operation
-------------------
Two things must survive a restart, or a replay could succeed after one: the highest command
counter ever accepted, and the answers to recent commands (so that a retransmission of an applied
command gets its first answer instead of being applied again). Both live in :class:`LinkState`,
a JSON dict the pump stores in its memory image (``PumpHandler.save_link_state``).

The counter is saved as a *ceiling*, as OSCORE's appendix B.1.1 does: when a counter passes the
stored ceiling, the new ceiling is ``counter + COUNTER_RESERVE``, saved before the command acts.
After a restart every counter up to the ceiling counts as used, so no counter is accepted twice
even if power failed between two saves.

Prepared two-step commands (:class:`PreparedCommand`) live in RAM only: a restart forgets them,
and their challenge with them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from itb.telemetry.codec import CodecError, decode_response, encode_json
from itb.telemetry.pairing import LinkStateError
from itb.telemetry.requests import Command, Request
from itb.telemetry.responses import Prepared, Response
from itb.telemetry.validation import JSON, MAX_COUNTER

COUNTER_RESERVE = 64  # counters accepted between two saves of the ceiling (OSCORE B.1.1)
MAX_KEPT_ANSWERS = 32  # command answers kept for retransmissions
LINK_STATE_FORMAT = 1


def request_digest(request: Request) -> str:
    """What a request id is bound to: the same id with another body is refused."""
    return hashlib.sha256(encode_json(request.to_wire())).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """A command's first answer, given again to a retransmission of the same command."""

    key_id: str
    counter: int
    digest: str
    response: Response
    stored: str  # the encoded answer, kept so a save does not re-encode every answer
    session: bytes = b""  # a commit's session (handshake hash); RAM only, empty after a restart


@dataclass(frozen=True, slots=True)
class PreparedCommand:
    """A prepared, not yet committed high-risk command (RAM only)."""

    session: bytes
    key_id: str
    digest: str
    command: Command
    answer: Prepared
    expires_at_s: float


class LinkState:
    """The persistent part: the counter ceiling and the kept answers (oldest first)."""

    def __init__(self) -> None:
        self.counter_ceiling = 0
        self.kept: OrderedDict[str, KeptAnswer] = OrderedDict()

    def keep(self, request_id: str, answer: KeptAnswer) -> None:
        self.kept[request_id] = answer
        while len(self.kept) > MAX_KEPT_ANSWERS:
            self.kept.popitem(last=False)

    def raise_ceiling(self, counter: int) -> bool:
        """Move the ceiling above ``counter`` if needed; True when it moved (save it now)."""
        if counter <= self.counter_ceiling:
            return False
        self.counter_ceiling = min(MAX_COUNTER, counter + COUNTER_RESERVE)
        return True

    def to_dict(self) -> dict[str, JSON]:
        return {
            "format": LINK_STATE_FORMAT,
            "counter_ceiling": self.counter_ceiling,
            "kept_answers": [
                {
                    "request_id": request_id,
                    "key_id": kept.key_id,
                    "counter": kept.counter,
                    "digest": kept.digest,
                    "response": kept.stored,
                }
                for request_id, kept in self.kept.items()
            ],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, object]) -> LinkState:
        if state.get("format") != LINK_STATE_FORMAT:
            raise _state_error("format", f"must be {LINK_STATE_FORMAT}")
        ceiling = state.get("counter_ceiling")
        if isinstance(ceiling, bool) or not isinstance(ceiling, int):
            raise _state_error("counter_ceiling", "must be an integer")
        if not 0 <= ceiling <= MAX_COUNTER:
            raise _state_error("counter_ceiling", f"outside 0 to {MAX_COUNTER}")
        kept_list = state.get("kept_answers", [])
        if not isinstance(kept_list, list):
            raise _state_error("kept_answers", "must be a list")
        loaded = cls()
        loaded.counter_ceiling = ceiling
        for i, item in enumerate(kept_list[-MAX_KEPT_ANSWERS:]):
            request_id, kept = _kept_from_dict(item, i)
            loaded.kept[request_id] = kept
        return loaded


def _state_error(name: str, reason: str) -> LinkStateError:
    return LinkStateError(name, reason, f"link state: {name} {reason}")


def _kept_from_dict(item: object, i: int) -> tuple[str, KeptAnswer]:
    try:
        if not isinstance(item, dict):
            raise TypeError("not an object")
        stored = str(item["response"])
        envelope = decode_response(stored.encode("ascii"))
        kept = KeptAnswer(
            str(item["key_id"]),
            int(item["counter"]),
            str(item["digest"]),
            envelope.response,
            stored,
        )
        return str(item["request_id"]), kept
    except (CodecError, KeyError, TypeError, ValueError, AttributeError):
        raise _state_error(f"kept_answers[{i}]", "is malformed") from None
