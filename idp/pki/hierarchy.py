"""The CA hierarchy (``ca.hierarchy``) over this deployment's database and audit log."""

from __future__ import annotations

from ca import hierarchy
from ca.keys import KeyStore
from idp.storage.certificate_store import AuthorityRecords, authority_rows
from idp.storage.certificates import CertificateAuthority
from idp.storage.engine import Database


class Hierarchy(hierarchy.Hierarchy):
    """``ca.hierarchy.Hierarchy`` whose records and audit entries go to ``db``."""

    def __init__(
        self,
        db: Database,
        keys: KeyStore,
        issuer_url: str,
        crl_partitions: int = 1,
        operator: str = "system",
    ) -> None:
        super().__init__(AuthorityRecords(db), keys, issuer_url, crl_partitions, operator)
        self.db = db

    def rows(self) -> list[CertificateAuthority]:
        """The stored rows of every CA generation (for the CLI's listing and copies)."""
        return authority_rows(self.db)
