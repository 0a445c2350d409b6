"""The remote's two jobs over the encrypted link: read the pump, ask for a patient bolus.

A bolus is asked for only when the pump's own answer (read in the same session, just before)
says one is possible now; otherwise the remote refuses in words and sends nothing. The pump
still checks everything itself (lockout, count per rolling day, 24-hour maximum) and may say
no. A request that got no answer is journaled and settled from the pump's event log at the next
connection, as ``itb programmer`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from itb.link.client import PumpAddress, PumpSession, UncertainJournal
from itb.link.links import HandshakeRefusedError, LinkError
from itb.remote import words
from itb.remote.words import RemoteStatus, status_words
from itb.telemetry.outcomes import Outcome
from itb.telemetry.pairing import key_id_of

BOLUS_COMMAND = "patient-bolus"


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """What the family is told: ``outcome`` is done, rejected, refused, not_sent, uncertain,
    unreachable or not_paired; ``words`` says it in plain words."""

    outcome: str
    words: str
    status: RemoteStatus | None = None
    settled: tuple[str, ...] = ()  # earlier unanswered requests, settled now

    @property
    def given(self) -> bool:
        return self.outcome == Outcome.DONE.value

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "words": self.words,
            "status": self.status.to_dict() if self.status else None,
            "settled": list(self.settled),
        }


@dataclass(frozen=True, slots=True)
class Remote:
    """The paired pump: where it listens, the keys, the journal of unanswered requests."""

    address: PumpAddress
    journal_path: Path

    @classmethod
    def from_files(cls, pump: str, key: Path, pump_key: Path, timeout_s: float = 2.0) -> Remote:
        address = PumpAddress.from_files(pump, key, pump_key, timeout_s=timeout_s)
        return cls(address, key.with_name(key.stem + ".uncertain.json"))

    @property
    def journal(self) -> UncertainJournal:
        return UncertainJournal(self.journal_path)


async def _settle(session: PumpSession, remote: Remote) -> tuple[str, ...]:
    pump_id = key_id_of(remote.address.pump_public)
    pending = remote.journal.pending(pump_id)
    if not pending:
        return ()
    ids = [p["request_id"] for p in pending]
    resolutions = await session.resolve(ids)
    remote.journal.remove(ids)
    return tuple(f"an earlier request: {resolutions[i].value.replace('_', ' ')}" for i in ids)


async def _status(remote: Remote) -> RemoteAnswer:
    async with await PumpSession.connect(remote.address) as session:
        settled = await _settle(session, remote)
        status = status_words(await session.interrogate())
        return RemoteAnswer(Outcome.DONE.value, status.bolus_words, status, settled)


async def _bolus(remote: Remote) -> RemoteAnswer:
    pump_id = key_id_of(remote.address.pump_public)
    async with await PumpSession.connect(remote.address) as session:
        settled = await _settle(session, remote)
        before = status_words(await session.interrogate())
        if not before.bolus_available:
            return RemoteAnswer(
                "not_sent", f"{before.bolus_words} {words.NOT_SENT}", before, settled
            )
        sent: list[str] = []

        def on_sent(request_id: str) -> None:
            sent.append(request_id)
            remote.journal.add(request_id, pump_id, BOLUS_COMMAND)

        report = await session.patient_bolus(on_sent)
        if report.outcome is not Outcome.UNCERTAIN:
            remote.journal.remove(sent)
        after = (
            status_words(await session.interrogate()) if report.outcome is Outcome.DONE else before
        )
        return RemoteAnswer(
            report.outcome.value,
            _outcome_words(report.outcome, report.reason, before),
            after,
            settled,
        )


def _outcome_words(outcome: Outcome, reason: str | None, before: RemoteStatus) -> str:
    if outcome is Outcome.DONE:
        return words.GIVEN.format(dose=before.bolus_dose_ug or 0.0)
    if outcome is Outcome.REJECTED:
        return words.REJECTED.format(reason=reason or "no reason given")
    if outcome is Outcome.REFUSED:
        return words.REFUSED
    return words.UNCERTAIN


def _run(remote: Remote, job: str) -> RemoteAnswer:
    """Run one job to its answer; a link failure is an answer in words too."""
    work = _bolus if job == "bolus" else _status
    try:
        return asyncio.run(work(remote))
    except HandshakeRefusedError:
        return RemoteAnswer("not_paired", words.NOT_PAIRED)
    except LinkError:
        return RemoteAnswer("unreachable", words.UNREACHABLE)


def read_status(remote: Remote) -> RemoteAnswer:
    return _run(remote, "status")


def ask_bolus(remote: Remote) -> RemoteAnswer:
    return _run(remote, "bolus")
