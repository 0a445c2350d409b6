"""Which links the pump keeps before they are authenticated, and for how long: pure policy.

Theory of operation
-------------------
A peer without a key can open links for free; the pump must not let them hold its one session
or its memory (issue 12: three idle sockets kept a paired programmer out for 233 s). So a link
is **unauthenticated** until its session is proved: a handshake from a paired key (KK message 1)
*and* a first sealed frame that opens under that session. Message 1 alone proves nothing, since
a recorded one replays perfectly; only the holder of the programmer's ephemeral key can seal the
next frame.

An unauthenticated link

* never holds the session: the server serialises proved sessions only (transport.py);
* has ``handshake_deadline_s`` from its accept to prove itself, then is closed;
* while it has sent nothing, is *silent*: closed after ``silent_s`` (a programmer sends its
  handshake the moment it connects), and at most ``max_silent_links`` are kept (the oldest
  closed first, once they have had half of ``silent_s`` to talk), so idle sockets cost the pump
  little and never crowd out a talking link;
* once it has sent something, counts against a budget: at most ``max_links`` at once,
  ``max_per_source`` from one source (the peer's address). A link is always admitted and its
  first bytes read, so pre-auth traffic never stops a handshake from being attempted; when a
  budget is then over, the pump closes the link that has shown the least promise
  (:func:`eviction_rank`), oldest first:

      =====  ==========================================================  ==================
      rank   the link                                                    closed
      =====  ==========================================================  ==================
      0      was refused (garbage, an unknown key, a replayed message)   first
      1      has sent part of a frame, nothing refused yet
      2      half-open: a fresh message 1 from a paired key was answered  last
             (whatever was refused on the link before)
      =====  ==========================================================  ==================

  So an attacker's garbage links make room for a programmer's, and only another fresh
  handshake from a paired key (which an attacker cannot make) can push out a half-open one.
* is closed after ``max_failures`` refused frames: it has had its chances.

Nothing here reads a clock: the endpoint passes ``now_s`` in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class PreAuthBudget:
    """What unauthenticated links may cost the pump."""

    max_links: int = 64  # unauthenticated links that have talked, every source together
    max_per_source: int = 16  # of those, from one source (address)
    max_silent_links: int = 256  # links that have sent nothing yet
    silent_s: float = 1.0  # a link that sends nothing for this long is closed
    handshake_deadline_s: float = 5.0  # from accept to a proved session
    max_failures: int = 8  # refused frames before an unauthenticated link is closed

    def __post_init__(self) -> None:
        if not 1 <= self.max_per_source <= self.max_links or self.max_silent_links < 1:
            raise ValueError("need 1 <= max_per_source <= max_links and max_silent_links >= 1")
        if not 0.0 < self.silent_s <= self.handshake_deadline_s or self.max_failures < 1:
            raise ValueError("need 0 < silent_s <= handshake_deadline_s and max_failures >= 1")


class Promise(IntEnum):
    """How far an unauthenticated link that has talked got (the eviction rank: lowest first)."""

    REFUSED = 0
    TALKING = 1
    HALF_OPEN = 2


class PreAuthLink(Protocol):
    """What the policy needs to know about an unauthenticated link."""

    @property
    def source(self) -> str | None: ...

    @property
    def accepted_at_s(self) -> float: ...

    @property
    def promise(self) -> Promise: ...


L = TypeVar("L", bound=PreAuthLink)


def eviction_rank(link: PreAuthLink) -> tuple[int, float]:
    """Sort key: the least promising first, and the oldest first among equals."""
    return int(link.promise), link.accepted_at_s


def choose_evictions(links: Sequence[L], newcomer: L, budget: PreAuthBudget) -> list[L]:
    """The talking links to close so that those left, ``newcomer`` among them (it has just
    talked), fit both budgets. ``newcomer`` itself may be the one to go."""
    evicted: list[L] = []
    same_source = sorted((k for k in links if k.source == newcomer.source), key=eviction_rank)
    evicted += same_source[: max(0, len(same_source) - budget.max_per_source)]
    remaining = sorted((k for k in links if k not in evicted), key=eviction_rank)
    evicted += remaining[: max(0, len(remaining) - budget.max_links)]
    return evicted


def oldest_silent(links: Sequence[L], budget: PreAuthBudget, now_s: float) -> list[L]:
    """The silent links to close so that at most ``max_silent_links`` are kept: the oldest, and
    only those that have had half their ``silent_s`` to talk (a burst of new connections must
    not close a programmer's before the pump has read its handshake; the cap is then exceeded
    for at most that half)."""
    had_their_chance = [k for k in links if now_s - k.accepted_at_s >= budget.silent_s / 2]
    ordered = sorted(had_their_chance, key=lambda k: k.accepted_at_s)
    return ordered[: max(0, len(links) - budget.max_silent_links)]
