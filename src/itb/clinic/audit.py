"""The append-only, hash-chained audit log (UTC).

Each entry's hash covers its content and the previous entry's hash, so an edited or deleted
row breaks :func:`verify_chain`. The database refuses UPDATE and DELETE on the table (triggers in
the first migration) and refuses two entries with the same parent (UNIQUE prev_hash), so the
chain cannot fork. An entry is written in the caller's transaction: it commits with the change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from itb.clinic.models import AuditEntry, User

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK_KEY = 7243101  # any constant: serialises appends to the chain


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode()).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at_utc": entry.at_utc.isoformat(),
        "user_id": entry.user_id,
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "before": entry.before_json,
        "after": entry.after_json,
    }


def _lock_chain_head(db: Session) -> None:
    """Hold the writer lock before reading the chain head, so two writers cannot both extend it."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK_KEY})
    else:
        # SQLite takes its single write lock at the first write statement of a transaction
        db.execute(text("DELETE FROM login_failures WHERE 1 = 0"))


def record(
    db: Session,
    user: User | None,
    action: str,
    entity: str,
    entity_id: object,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append an entry (who, when in UTC, what, before/after) in the caller's transaction."""
    _lock_chain_head(db)
    db.flush()
    last = db.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    entry = AuditEntry(
        at_utc=utc_now(),
        user_id=user.id if user else None,
        username=user.username if user else "system",
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before_json=canonical_json(before),
        after_json=canonical_json(after),
        prev_hash=last or GENESIS_HASH,
    )
    entry.hash = _entry_hash(entry.prev_hash, _fields(entry))
    db.add(entry)
    db.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    intact: bool
    first_broken_id: int | None = None


def verify_chain(db: Session) -> ChainReport:
    prev = GENESIS_HASH
    count = 0
    for entry in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        count += 1
        if entry.prev_hash != prev or entry.hash != _entry_hash(prev, _fields(entry)):
            return ChainReport(count, False, entry.id)
        prev = entry.hash
    return ChainReport(count, True)
