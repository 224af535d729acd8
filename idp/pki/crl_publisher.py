"""Publishing CRLs: which CRL a URL names, whether the stored one is still current, reissuing.

A stored CRL is current while no revocation has happened in its partition
since it was built (``crl_revisions``) and its nextUpdate is further away than
the refresh margin; otherwise the next request (or the revocation itself,
``crl_reissue_on_revocation``) builds and signs a new one. The new CRL's row
and its ``crl_published`` audit entry commit together; a second process that
built the same CRL number meanwhile hits the unique constraint and serves the
winner's CRL instead.

Entries leave the CRL one full validity period after the certificate expires
(RFC 5280 section 3.3: an entry stays until it has appeared on a CRL issued
after the certificate's expiry).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca import names
from ca.crl import build_crl, crl_file_name, crl_url, partitions_needed
from ca.hierarchy import Hierarchy, HierarchyError, IssuingCA
from ca.keys import KeyStoreError
from idp.audit.log import AuditEvent
from idp.pki.revocation import Actor
from idp.pki.status_settings import StatusService, StatusSettings, utc
from idp.storage.certificate_store import (
    authorities_with_key_ids,
    authority_named,
    authority_row,
    record_audit_event,
)
from idp.storage.crl_store import (
    CRLNumberTaken,
    crl_state,
    highest_crl_number,
    latest_crl,
    publication_inputs,
    store_crl,
)
from idp.storage.crls import CRLRecord
from idp.storage.engine import Database
from idp.tracking import new_tracking_code

log = logging.getLogger("hoviyat.crl")

EVENT_PUBLISHED = "crl_published"
SYSTEM = Actor("system", "crl-publisher", "scheduled or revocation-triggered CRL reissue")
DELTA_OVERLAP = timedelta(minutes=10)
"""A delta lists revocations since this long before its base was built, so a revocation
committing while the base was being read is on the delta even if not on the base."""

_FILE_NAME = re.compile(
    r"^(?P<name>[a-z][a-z0-9]*?)(?:-g(?P<generation>\d{1,4}))?(?:-p(?P<partition>\d{1,5}))?"
    r"(?P<delta>-delta)?$"
)


class UnknownCRL(LookupError):
    """The URL names no CRL this CA publishes."""


class CRLUnavailable(RuntimeError):
    """The CA key cannot sign now (offline root, token absent) and no CRL is stored."""


class CRLImportRefused(ValueError):
    """A CRL brought from the root's machine is not one this server may publish (says why)."""


@dataclass(frozen=True)
class CRLAddress:
    """Which CRL a URL names: a CA key generation, a partition, full or delta."""

    ca_name: str
    generation: int
    key_id: str
    partition: int
    partitions: int
    delta: bool


def _event(actor: Actor, operation: str, outcome: str, detail: dict[str, object]) -> AuditEvent:
    """A ``crl_published`` audit entry (published, or refused) by ``actor``."""
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=EVENT_PUBLISHED,
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        legal_basis=actor.reason_text,
        operation=operation,
        outcome=outcome,
        detail=detail,
    )


class CRLPublisher(StatusService):
    def __init__(
        self, db: Database, hierarchy: Hierarchy, settings: StatusSettings | None = None
    ) -> None:
        super().__init__(db, hierarchy, settings)
        self._locks: dict[tuple[str, int, bool], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- addressing ------------------------------------------------------------

    def resolve(self, file_stem: str) -> CRLAddress:
        """``persons``, ``persons-g2-p3-delta``... (the URL's file name without ``.crl``)."""
        match = _FILE_NAME.match(file_stem)
        if match is None:
            raise UnknownCRL(f"{file_stem}.crl is not a CRL name")
        generation = int(match["generation"] or 1)
        row = authority_named(self.db, match["name"], generation)
        if row is None or row.certificate is None:
            raise UnknownCRL(f"no CA publishes {file_stem}.crl")
        partitions = row.crl_partitions
        if (partitions > 1) != (match["partition"] is not None):
            raise UnknownCRL(
                f"CA {match['name']} has {partitions} CRL partition(s): "
                + ("name one with -p<n>" if partitions > 1 else "there is no -p<n> CRL")
            )
        if row.name == names.ROOT and match["delta"] is not None:
            raise UnknownCRL("the root CA publishes no delta CRL")
        partition = int(match["partition"] or 0)
        if partition >= partitions:
            raise UnknownCRL(f"CA {match['name']} has partitions 0 to {partitions - 1}")
        return CRLAddress(
            row.name, generation, row.key_id, partition, partitions, match["delta"] is not None
        )

    def addresses(self, ca: IssuingCA, *, delta: bool = False) -> list[CRLAddress]:
        return [
            CRLAddress(ca.name, ca.generation, ca.key_id, p, ca.crl_partitions, delta)
            for p in range(ca.crl_partitions)
        ]

    def _ca(self, address: CRLAddress) -> IssuingCA:
        return self.hierarchy.issuing_ca(address.ca_name, key_id=address.key_id)

    def url(self, address: CRLAddress, *, delta: bool | None = None) -> str:
        return crl_url(
            names.http_base(self.hierarchy.issuer_url),
            crl_file_name(
                address.ca_name,
                generation=address.generation,
                partition=address.partition,
                partitions=address.partitions,
                delta=address.delta if delta is None else delta,
            ),
        )

    # -- reading ---------------------------------------------------------------

    def _is_current(self, record: CRLRecord | None, revision: int, now: datetime) -> bool:
        if record is None or record.revision < revision:
            return False
        refresh = timedelta(
            hours=self.settings.delta_crl_refresh_hours
            if record.is_delta
            else self.settings.crl_refresh_hours
        )
        return now < record.next_update - refresh

    def current(self, address: CRLAddress, now: datetime | None = None) -> CRLRecord:
        """The CRL to serve at ``address``: the stored one if current, else a new one."""
        now = utc(now or datetime.now(UTC))
        state = crl_state(self.db, address.key_id, address.partition, with_delta=address.delta)
        revision, full, delta = state.revision, state.full, state.delta
        if not address.delta and self._is_current(full, revision, now):
            assert full is not None
            return full
        if address.delta and self._is_current(full, revision, now):
            if self._is_current(delta, revision, now):
                assert delta is not None
                return delta
        try:
            if address.delta and not self._is_current(full, revision, now):
                self.publish(address, delta=False, now=now)
            return self.publish(address, delta=address.delta, now=now)
        except (KeyStoreError, HierarchyError) as exc:
            # The key cannot sign here (offline root, HSM away): serve what is stored.
            stored = delta if address.delta else full
            if stored is None:
                hint = (
                    ": sign it on the root's machine ('hoviyat ca root-crl') and publish it "
                    "here with 'hoviyat ca import-crl'"
                    if address.ca_name == names.ROOT
                    else f": {exc}"
                )
                raise CRLUnavailable(f"no CRL can be signed for {address.ca_name}{hint}") from exc
            return stored

    # -- building --------------------------------------------------------------

    def _lock(self, address: CRLAddress, delta: bool) -> threading.Lock:
        key = (address.key_id, address.partition, delta)
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def validity_hours(self, address: CRLAddress, delta: bool) -> int:
        """nextUpdate - thisUpdate of a CRL at ``address``: the root's own, or a full or delta's."""
        if address.ca_name == names.ROOT:
            return self.settings.root_crl_validity_days * 24
        return self.settings.delta_crl_validity_hours if delta else self.settings.crl_validity_hours

    def publish(
        self,
        address: CRLAddress,
        *,
        delta: bool = False,
        actor: Actor = SYSTEM,
        now: datetime | None = None,
    ) -> CRLRecord:
        """Build, sign and store a new CRL for ``address`` (full, or delta on the latest full)."""
        with self._lock(address, delta):
            return self._publish(address, delta, actor, utc(now or datetime.now(UTC)))

    def _publish(self, address: CRLAddress, delta: bool, actor: Actor, now: datetime) -> CRLRecord:
        ca = self._ca(address)
        this_update = now.replace(microsecond=0)
        root = address.ca_name == names.ROOT
        if root and delta:
            raise UnknownCRL("the root publishes no delta CRL: its CRL comes from its own machine")
        validity = self.validity_hours(address, delta)
        inputs = publication_inputs(
            self.db,
            address.key_id,
            address.partition,
            address.partitions,
            delta=delta,
            keep_after=this_update - timedelta(hours=self.settings.crl_validity_hours),
            overlap=DELTA_OVERLAP,
        )
        base, entries = inputs.base, inputs.entries
        if delta and base is None:
            raise UnknownCRL("a delta CRL needs a full CRL to build on: publish one first")
        number = (inputs.highest or 0) + 1
        oversize = not delta and len(entries) > self.settings.crl_max_entries
        if oversize:
            # Still published (a too-large CRL beats none), but the operator must
            # give new CA generations more partitions: existing CDPs cannot move.
            log.warning(
                "CRL %s partition %d has %d entries (over %d): roll the CA over with %d partitions",
                address.ca_name,
                address.partition,
                len(entries),
                self.settings.crl_max_entries,
                partitions_needed(len(entries) * address.partitions, self.settings.crl_max_entries),
            )
        der = build_crl(
            issuer=ca.certificate,
            signer=ca.signer,  # type: ignore[arg-type]
            entries=entries,
            crl_number=number,
            this_update=this_update,
            next_update=this_update + timedelta(hours=validity),
            delta_base=base.crl_number if base is not None else None,
            # RFC 5280 sections 5.2.4 and 5.2.5: a delta CRL has the scope of its
            # base, so both carry the IDP of the full CRL of the partition (the CDP
            # in the certificates). A delta naming its own URL is a different scope,
            # and a client combining the two would skip the delta's revocations.
            distribution_point=self.url(address, delta=False) if address.partitions > 1 else None,
            freshest_crl=(
                self.url(address, delta=True)
                if self.settings.delta_crls and not delta and not root
                else None
            ),
        )
        record = CRLRecord(
            issuer_ca=names.publication_name(address.ca_name, address.generation),
            issuer_key_id=address.key_id,
            partition=address.partition,
            crl_number=number,
            is_delta=delta,
            base_crl_number=base.crl_number if base is not None else None,
            revision=inputs.revision,
            entries=len(entries),
            this_update=this_update,
            next_update=this_update + timedelta(hours=validity),
            der=der,
        )
        event = _event(
            actor,
            "publish_crl",
            "published",
            {
                "issuer_ca": record.issuer_ca,
                "partition": address.partition,
                "crl_number": number,
                "delta": delta,
                "base_crl_number": record.base_crl_number,
                "entries": len(entries),
                "oversize": oversize,
                "next_update": record.next_update.isoformat(),
            },
        )
        try:
            store_crl(self.db, record, event)
        except CRLNumberTaken:
            # Another process published this number first: its CRL is as new as ours.
            winner = latest_crl(self.db, address.key_id, address.partition, delta)
            if winner is None:
                raise
            return winner
        return record

    def publish_all(
        self, ca: IssuingCA, *, delta: bool = False, actor: Actor = SYSTEM
    ) -> list[CRLRecord]:
        """A new CRL for every partition of ``ca`` (the CLI's ``ca crl``)."""
        records = []
        for address in self.addresses(ca):
            if delta:
                if latest_crl(self.db, address.key_id, address.partition, delta=False) is None:
                    self.publish(address, actor=actor)
            records.append(self.publish(address, delta=delta, actor=actor))
        return records

    def reissue_after_revocation(self, issuer_key_ids: set[str]) -> None:
        """Bring every CRL of these CA generations up to date (after a revocation)."""
        if not self.settings.crl_reissue_on_revocation:
            return
        for row in authorities_with_key_ids(self.db, issuer_key_ids):
            for partition in range(row.crl_partitions):
                base = CRLAddress(
                    row.name, row.generation, row.key_id, partition, row.crl_partitions, False
                )
                try:
                    self.current(base)
                    if self.settings.delta_crls and row.name != names.ROOT:
                        self.current(
                            CRLAddress(
                                row.name,
                                row.generation,
                                row.key_id,
                                partition,
                                row.crl_partitions,
                                True,
                            )
                        )
                except CRLUnavailable:
                    continue

    # -- CRLs signed elsewhere (the offline root) ---------------------------------

    def _refuse_import(self, actor: Actor, message: str) -> CRLImportRefused:
        """Audit the refusal (in its own transaction: nothing else was written)."""
        record_audit_event(self.db, _event(actor, "import_crl", "refused", {"reason": message}))
        return CRLImportRefused(message)

    def import_crl(
        self, data: bytes, *, actor: Actor = SYSTEM, now: datetime | None = None
    ) -> CRLRecord:
        """Publish a full CRL signed on another machine ('ca root-crl' on the root's).

        The root key never comes online, so its CRL is made where the key is and
        brought here. Accepted only if it is a full CRL of a CA generation known
        here (its AKI), signed by that CA's key and named by its subject (RFC 5280
        section 6.3.3 (f), (b)), not expired, and numbered above every CRL of that
        CA already published here (section 5.2.3: a replayed older CRL would undo
        a revocation).
        """
        now = utc(now or datetime.now(UTC))
        try:
            crl = x509.load_der_x509_crl(data)
        except ValueError:
            try:
                crl = x509.load_pem_x509_crl(data)
            except ValueError:
                raise self._refuse_import(actor, "not a CRL (DER or PEM)") from None
        der = crl.public_bytes(Encoding.DER)
        extensions = crl.extensions
        try:
            key_id_bytes = extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier
            ).value.key_identifier
            number = extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound as exc:
            raise self._refuse_import(
                actor, f"the CRL lacks a required extension ({exc.oid.dotted_string})"
            ) from None
        key_id = (key_id_bytes or b"").hex()
        row = authority_row(self.db, key_id)
        if row is None or row.certificate is None:
            raise self._refuse_import(actor, "the CRL is not from a CA installed here")
        issuer = x509.load_der_x509_certificate(row.certificate)
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise self._refuse_import(
                actor, f"the CRL's signature does not verify with CA {row.name}'s key"
            )
        for extension_type in (x509.DeltaCRLIndicator, x509.IssuingDistributionPoint):
            try:
                extensions.get_extension_for_class(extension_type)
            except x509.ExtensionNotFound:
                continue
            raise self._refuse_import(
                actor, "only a full, unpartitioned CRL can be imported (no delta, no IDP)"
            )
        next_update = crl.next_update_utc
        if next_update is None or next_update <= now:
            raise self._refuse_import(actor, "the CRL has expired: sign a new one on the root")
        if crl.last_update_utc > now + timedelta(minutes=5):
            raise self._refuse_import(actor, "the CRL's thisUpdate is in the future: check clocks")
        highest = highest_crl_number(self.db, key_id, 0)
        if highest is not None and number <= highest:
            raise self._refuse_import(
                actor,
                f"CRL number {number} is not above the published CRL number {highest}: "
                "an older CRL would bring revoked certificates back",
            )
        revoked = list(crl)
        record = CRLRecord(
            issuer_ca=names.publication_name(row.name, row.generation),
            issuer_key_id=key_id,
            partition=0,
            crl_number=number,
            is_delta=False,
            base_crl_number=None,
            entries=len(revoked),
            this_update=crl.last_update_utc,
            next_update=next_update,
            der=der,
        )
        event = _event(
            actor,
            "import_crl",
            "published",
            {
                "issuer_ca": record.issuer_ca,
                "crl_number": number,
                "entries": len(revoked),
                "next_update": next_update.isoformat(),
            },
        )
        try:
            store_crl(self.db, record, event, stamp_revision=True)
        except CRLNumberTaken:
            # The unique (key, partition, number) constraint: a concurrent import won.
            raise self._refuse_import(
                actor, f"CRL number {number} was published meanwhile by another import"
            ) from None
        return record
