"""What the CA needs from the outside: somewhere to record what it signs, and its audit trail.

``ca/`` builds, lints and signs; it never opens a database. The registration
side hands it implementations of these protocols (over its database and
audit log). Each is
narrow on purpose: a method per thing the CA records, in the transaction the
CA's rules need (an intent durable before its signature, a lifecycle change
and its audit entry together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class SerialTaken(Exception):
    """A serial number is already recorded: draw another (the store's primary key caught it)."""


class AlreadyRecorded(Exception):
    """Another process recorded the same CA generation first: its row stands."""


class KeyRefused(Exception):
    """The public key may not be certified: blocked after a compromise, or a CA's own key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason  # "blocked" | "ca-key"
        self.detail = detail


@dataclass
class Authority:
    """One key generation of a CA as the hierarchy records it (root or issuing CA)."""

    key_id: str  # subject key identifier, hex
    name: str
    key_ref: str  # "file:<path>" or "pkcs11:<label>"
    generation: int = 1
    parent_key_id: str | None = None  # None for the root, and while a CSR is pending
    certificate: bytes | None = None  # None while an offline root has not signed the CSR
    active: bool = True
    crl_partitions: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateEntry:
    """A certificate as the CA records it (the ``certificates`` row, without its status)."""

    serial_hex: str
    issuer_ca: str
    issuer_key_id: str
    profile: str
    subject: str  # RFC 4514
    spki_sha256: str
    not_before: datetime
    not_after: datetime
    requested_by: str
    request_reason: str | None
    subject_hash: str | None  # of the person or entity named, if any
    tracking_code: str | None  # None: the store files it under a new one


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent(CertificateEntry):
    """A certificate about to be signed, and what its ``certificate_issued`` entry says."""

    key_identifier: str  # hex SHA-1 of the key bits: the CA-key refusal compares these
    actor_type: str = "client"
    audit_detail: Mapping[str, object] = field(default_factory=dict)


class IntentStore(Protocol):
    """Where issuance records its intents and results (``ca.issuance``)."""

    def record_intents(self, intents: Sequence[Intent], now: datetime) -> None:
        """In one committed transaction: raise :class:`KeyRefused` for a blocked or CA key,
        else record every intent as pending; :class:`SerialTaken` if a serial exists."""
        ...

    def record_issued(
        self, intents: Sequence[Intent], ders: Sequence[bytes], issued_at: datetime
    ) -> None:
        """In one committed transaction: each pending intent becomes issued with its DER,
        audited (``certificate_issued``)."""
        ...


class AuthorityChanges(Protocol):
    """One transaction of hierarchy changes, committed together with their audit entries."""

    def retire_active(self, name: str) -> list[str]:
        """Deactivate the active generations of CA ``name``; their key ids."""
        ...

    def add_authority(self, authority: Authority) -> None: ...

    def install(self, key_id: str, certificate: bytes, parent_key_id: str) -> None:
        """The pending generation ``key_id`` gets its certificate and becomes active."""
        ...

    def add_certificate(self, entry: CertificateEntry, der: bytes, issued_at: datetime) -> None:
        """Record a certificate the root signed outside issuance (an issuing CA's)."""
        ...

    def audit(self, actor: str, operation: str, outcome: str, detail: dict[str, object]) -> None:
        """A ``ca_lifecycle`` entry by operator ``actor``."""
        ...


class AuthorityStore(Protocol):
    """The CA hierarchy's records (``ca.hierarchy``)."""

    def authorities(self) -> list[Authority]:
        """Every generation of every CA, by name then generation."""
        ...

    def authority(self, name: str, key_id: str | None = None) -> Authority | None:
        """The active generation of ``name`` (the latest), or its generation ``key_id``."""
        ...

    def authority_by_key_id(self, key_id: str) -> Authority | None: ...

    def pending_authority(self, name: str) -> Authority | None:
        """A generation of ``name`` whose CSR no root has signed yet."""
        ...

    def last_generation(self, name: str) -> int:
        """The highest generation of ``name``; 0 for none."""
        ...

    def change(self) -> AbstractContextManager[AuthorityChanges]:
        """A transaction; :class:`AlreadyRecorded` if another process won a race."""
        ...
