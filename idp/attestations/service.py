"""The attestation parts of one running server: signer, issuer, verifier, status lists.

Built once per process on first use (the signer may have to be obtained from
the CA then), and shared by every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from idp.attestations import sharing
from idp.attestations.errors import AttestationInvalid
from idp.attestations.issuer import (
    AttestationIssuer,
    AttestationRequest,
    AttestationSettings,
    Issued,
    issue,
    status_list_uri,
)
from idp.attestations.provision import CertificateSource, SignerBundle, ensure_bundle
from idp.attestations.status_list import StatusList, sign_status_list_token
from idp.attestations.verifier import AttestationVerifier
from idp.storage.attestations import revoked_indexes, status_list_size
from idp.storage.engine import Database
from verifiers.registry.base import LegalEntity, Person


@dataclass
class AttestationService:
    settings: AttestationSettings
    issuer_url: str
    db: Database
    bundle: SignerBundle
    issuer: AttestationIssuer
    verifier: AttestationVerifier
    pepper: bytes  # hashes the holder's national code into the row and the audit entry

    @property
    def root(self) -> x509.Certificate:
        return self.bundle.root

    def issue(
        self,
        person: Person,
        request: AttestationRequest,
        *,
        level: str,
        entity: LegalEntity | None = None,
        actor_type: str,
        client_id: str | None = None,
        share: bool = False,
    ) -> tuple[Issued, str | None]:
        """Record and sign one attestation and, with ``share``, its verification code:
        one transaction with its audit entry. Returns (issued, code or None)."""
        with self.db.session() as session:
            issued = issue(
                session,
                self.issuer,
                person,
                request,
                level=level,
                pepper=self.pepper,
                entity=entity,
                actor_type=actor_type,
                client_id=client_id,
            )
            code = (
                sharing.share(session, issued.id, issued.sd_jwt, issued.expires_at)
                if share
                else None
            )
        return issued, code

    def status_list_token(self, list_id: int) -> str | None:
        """The signed Status List Token of ``list_id``, from the database as it is now."""
        with self.db.session() as session:
            size = status_list_size(session, list_id)
            if size is None:
                return None
            revoked = revoked_indexes(session, list_id)
        status_list = StatusList(size)
        for index in revoked:
            status_list[index] = 1
        return sign_status_list_token(
            self.bundle.signer,
            status_list_uri(self.issuer_url, list_id),
            status_list,
            now=int(time.time()),
            ttl=self.settings.status_list_ttl_seconds,
        )

    def fetch_own_status_list(self, uri: str) -> str:
        """Status for the server's own verifications: straight from the database, no HTTP."""
        prefix = status_list_uri(self.issuer_url, 0)[:-1]
        suffix = uri.removeprefix(prefix)
        if uri == suffix or not suffix.isdigit():
            raise AttestationInvalid("status_unavailable", f"{uri} is not a Hoviyat status list")
        token = self.status_list_token(int(suffix))
        if token is None:
            raise AttestationInvalid("status_unavailable", f"no status list at {uri}")
        return token


def build_service(
    settings: AttestationSettings,
    *,
    issuer_url: str,
    db: Database,
    signer_path: Path,
    kek: bytes,
    pepper: bytes,
    source: Callable[[], CertificateSource],
) -> AttestationService:
    path = Path(settings.signer_file) if settings.signer_file else signer_path
    renew_before = timedelta(days=settings.renew_days_before_expiry)
    bundle = ensure_bundle(path, kek, source, renew_before)
    service = AttestationService(
        settings=settings,
        issuer_url=issuer_url,
        db=db,
        bundle=bundle,
        issuer=AttestationIssuer(bundle.signer, issuer_url, decoys=settings.decoy_digests),
        verifier=AttestationVerifier([bundle.root]),
        pepper=pepper,
    )
    service.verifier.status_fetcher = service.fetch_own_status_list
    return service
