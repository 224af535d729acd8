"""The OCSP responder service: which CA a request is for, each certificate's status, caching.

Each issuing CA key generation answers through its own delegated responder
certificate (``idp.pki.responders``, profile ``ocsp-responder``: id-kp-OCSPSigning,
ocsp-nocheck), issued like any certificate (recorded, linted, audited)
the first time it is needed and replaced when it nears expiry. Its key is a
CA key store key (file or PKCS#11), never stored by this module.

Status comes from the ``certificates`` row on every request, so an answer is
"revoked" from the moment the revocation commits, in every process. What is
cached is the signed answer: for a request without nonce, keyed by
(CA key, serial, CertID hash) and valid only while the row's status is the
one it was signed for and it is younger than ``ocsp_refresh_minutes``. A
request with a nonce gets a freshly signed answer.

Answers: ``unknown`` for a serial this CA never issued (or whose issuance
failed before signing), ``good`` for issued and pending rows (a pending row
may name a certificate signed just before a crash), ``revoked`` with time
and reason; ``unauthorized`` for a CertID of a CA this responder does not
serve, ``malformedRequest`` for anything that is not an OCSP request.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.hierarchy import Hierarchy, HierarchyError, IssuingCA
from ca.keys import KeyStoreError, Signer
from ca.revocation import RevocationReason
from ca.rfc6960 import (
    HASH_ALGORITHMS,
    CertId,
    CertificateStatus,
    MalformedRequest,
    Responder,
    ResponseStatus,
    error_response,
    parse_request,
)
from ca.serials import serial_hex
from idp.pki.responders import issue_ocsp_responder
from idp.pki.status_settings import StatusService, StatusSettings, utc
from idp.storage.certificate_store import (
    CertificateState,
    StatusReader,
    certified_issuing_key_ids,
    certified_issuing_rows,
)
from idp.storage.crl_store import add_responder, responders_valid_after
from idp.storage.crls import OCSPResponderRecord
from idp.storage.engine import Database

log = logging.getLogger("hoviyat.ocsp")

_ROW_STATE = CertificateState  # status, revoked_at, reason
_CacheKey = tuple[str, int, str]  # CA key id, serial, CertID hash algorithm


@dataclass(frozen=True)
class OCSPAnswer:
    """The DER to send and whether an HTTP cache may keep it (no nonce: RFC 5019 section 6)."""

    der: bytes
    cacheable: bool = False
    produced_at: datetime | None = None
    next_update: datetime | None = None


@dataclass
class _Loaded:
    key_id: str
    responder: Responder
    renew_after: datetime


def _status(state: _ROW_STATE | None) -> CertificateStatus:
    if state is None or state[0] not in ("issued", "pending", "revoked"):
        return CertificateStatus.unknown()
    status, revoked_at, reason = state
    if status == "revoked" and revoked_at is not None:
        return CertificateStatus.revoked(revoked_at, RevocationReason[reason or "unspecified"])
    return CertificateStatus.good()


class OCSPService(StatusService):
    def __init__(
        self, db: Database, hierarchy: Hierarchy, settings: StatusSettings | None = None
    ) -> None:
        super().__init__(db, hierarchy, settings)
        self._lock = threading.Lock()
        self._index: dict[tuple[str, bytes, bytes], _Loaded] | None = None
        self._index_generations: frozenset[str] = frozenset()
        self._cache: OrderedDict[_CacheKey, tuple[_ROW_STATE | None, datetime, bytes]] = (
            OrderedDict()
        )
        # Parsed no-nonce requests by their exact bytes: a client asks the same
        # question again and again, and parsing costs more than the row read.
        self._parsed: dict[bytes, tuple[_Loaded, CertId]] = {}
        self._status = StatusReader(db)

    # -- responders ------------------------------------------------------------

    def ensure_responder(
        self, ca: IssuingCA, now: datetime | None = None, requested_by: str = "ocsp-responder"
    ) -> _Loaded:
        """The CA's responder, issuing a new responder certificate when none has long to live.

        ``requested_by`` names who caused an issuance in its audit entry: this
        service on demand, or an operator's 'ca ocsp-responder' ceremony.
        """
        now = utc(now or datetime.now(UTC))
        renew = timedelta(days=self.settings.ocsp_responder_renew_days)
        found = self._usable_responder(ca, now + renew)
        if found is not None:
            certificate, signer = found
        else:
            certificate, signer = self._issue_responder(ca, requested_by)
        return _Loaded(
            ca.key_id,
            Responder(ca.certificate, certificate, signer),  # type: ignore[arg-type]
            certificate.not_valid_after_utc - renew,
        )

    def _usable_responder(
        self, ca: IssuingCA, moment: datetime
    ) -> tuple[x509.Certificate, Signer] | None:
        """The longest-lived responder certificate whose key this host's key store holds.

        With keys in files, a responder key made on one host exists on that host
        only; another host over the same database then certifies a responder
        key of its own (a CA may delegate to any number of responders, RFC 6960
        section 4.2.2.2) instead of answering "unauthorized". With an HSM every
        host opens every key, and they all share the longest-lived one.
        """
        for row in responders_valid_after(self.db, ca.key_id, moment):
            try:
                signer = self.hierarchy.keys.load(row.key_ref)
            except KeyStoreError:
                continue
            return x509.load_der_x509_certificate(row.certificate), signer
        return None

    def _issue_responder(self, ca: IssuingCA, requested_by: str) -> tuple[x509.Certificate, Signer]:
        issued, signer = issue_ocsp_responder(self.db, self.hierarchy.keys, ca, requested_by)
        add_responder(
            self.db,
            OCSPResponderRecord(
                serial_hex=issued.serial_hex,
                issuer_key_id=ca.key_id,
                key_ref=signer.key_ref,
                certificate=issued.certificate.public_bytes(Encoding.DER),
                not_after=issued.certificate.not_valid_after_utc,
            ),
        )
        return issued.certificate, signer

    def _generations(self) -> frozenset[str]:
        """The key ids of the certified issuing CA generations in the store, now."""
        return certified_issuing_key_ids(self.db)

    def _load_index(self) -> dict[tuple[str, bytes, bytes], _Loaded]:
        index: dict[tuple[str, bytes, bytes], _Loaded] = {}
        rows = certified_issuing_rows(self.db)
        self._index_generations = frozenset(row.key_id for row in rows)
        now = datetime.now(UTC)
        for row in rows:
            try:
                ca = self.hierarchy.issuing_ca(row.name, key_id=row.key_id)
                if ca.certificate.not_valid_after_utc < now:
                    continue
                loaded = self.ensure_responder(ca)
            except (KeyStoreError, HierarchyError) as exc:
                log.warning("no OCSP responder for CA %s: %s", row.key_id, exc)
                continue
            for algorithm in HASH_ALGORITHMS:
                index[loaded.responder.issuer_hashes(algorithm)] = loaded
        return index

    def _responder_for(self, cert_id: CertId) -> _Loaded | None:
        wanted = (cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash)
        with self._lock:
            if self._index is None:
                self._index = self._load_index()
            loaded = self._index.get(wanted)
            if loaded is None and self._generations() != self._index_generations:
                # A CA generation born since ('ca rollover', 'ca install-issuing' in
                # any process): its certificates are answered from the moment it
                # is in the store. A stranger's CertID costs one read of the small
                # CA table, and a reload only when that table has changed.
                self.hierarchy.forget()
                self._index = self._load_index()
                loaded = self._index.get(wanted)
            if loaded is not None and datetime.now(UTC) >= loaded.renew_after:
                self._index = None  # reload with the renewed responder on the next request
                self.hierarchy.forget()
        return loaded

    @property
    def ready(self) -> bool:
        """Whether the responders are loaded (the first request loads them)."""
        return self._index is not None

    def forget(self) -> None:
        """Drop the loaded responders (after a CA rollover) and the cached answers."""
        with self._lock:
            self._index = None
            self._cache.clear()
            self._parsed.clear()

    # -- answering -------------------------------------------------------------

    def _row_state(self, issuer_key_id: str, serial: int) -> _ROW_STATE | None:
        """The row's status (``idp.storage.certificate_store.StatusReader``: no transaction)."""
        if serial <= 0 or serial.bit_length() > 160:
            return None
        return self._status.state(serial_hex(serial), issuer_key_id)

    def respond(self, request_der: bytes, now: datetime | None = None) -> OCSPAnswer:
        now = utc(now or datetime.now(UTC)).replace(microsecond=0)
        memo = self._parsed.get(request_der)
        if memo is not None and now < memo[0].renew_after:
            return self._cached_or_signed(memo[0], memo[1], now)
        try:
            request = parse_request(request_der)
        except MalformedRequest:
            return OCSPAnswer(error_response(ResponseStatus.malformed_request))
        try:
            loaded = self._responder_for(request.cert_ids[0])
        except (KeyStoreError, HierarchyError) as exc:
            log.warning("OCSP responder unavailable: %s", exc)
            return OCSPAnswer(error_response(ResponseStatus.try_later))
        if loaded is None or not all(loaded.responder.serves(c) for c in request.cert_ids):
            return OCSPAnswer(error_response(ResponseStatus.unauthorized))
        if request.nonce_extension is None and len(request.cert_ids) == 1:
            if len(self._parsed) >= self.settings.ocsp_cache_entries:
                self._parsed.clear()
            self._parsed[request_der] = (loaded, request.cert_ids[0])
            return self._cached_or_signed(loaded, request.cert_ids[0], now)
        states = [self._row_state(loaded.key_id, c.serial) for c in request.cert_ids]
        der = loaded.responder.respond(
            [(c, _status(s)) for c, s in zip(request.cert_ids, states, strict=True)],
            produced_at=now,
            next_update=now + timedelta(minutes=self.settings.ocsp_validity_minutes),
            nonce_extension=request.nonce_extension,
        )
        return self._answer(der, now, cacheable=False)

    def _cached_or_signed(self, loaded: _Loaded, cert_id: CertId, now: datetime) -> OCSPAnswer:
        """One CertID, no nonce: the cached answer while the row's status is unchanged."""
        state = self._row_state(loaded.key_id, cert_id.serial)
        key = (loaded.key_id, cert_id.serial, cert_id.hash_algorithm)
        refresh = timedelta(minutes=self.settings.ocsp_refresh_minutes)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == state and now - cached[1] < refresh:
                self._cache.move_to_end(key)
                return self._answer(cached[2], cached[1], cacheable=True)
        der = loaded.responder.respond(
            [(cert_id, _status(state))],
            produced_at=now,
            next_update=now + timedelta(minutes=self.settings.ocsp_validity_minutes),
        )
        with self._lock:
            self._cache[key] = (state, now, der)
            self._cache.move_to_end(key)
            while len(self._cache) > self.settings.ocsp_cache_entries:
                self._cache.popitem(last=False)
        return self._answer(der, now, cacheable=True)

    def _answer(self, der: bytes, produced_at: datetime, *, cacheable: bool) -> OCSPAnswer:
        return OCSPAnswer(
            der,
            cacheable=cacheable,
            produced_at=produced_at,
            next_update=produced_at + timedelta(minutes=self.settings.ocsp_validity_minutes),
        )
