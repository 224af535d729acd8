"""The CA hierarchy: an ECDSA P-384 root and issuing CAs (P-256) under it.

The CRL/OCSP side and the issuance code get signing material from here::

    hierarchy = Hierarchy(store, keys, issuer_url)   # store: ca.ports.AuthorityStore
    ca = hierarchy.issuing_ca("persons")            # the active generation
    ca = hierarchy.issuing_ca("persons", key_id=aki_hex)  # a given key generation
    ca.certificate, ca.chain, ca.signer, ca.crl_url, ca.ocsp_url ...
    crl = ca.sign_crl(builder); signature = ca.signer.sign(tbs_bytes)

or in one call ``load_issuing_ca(name, *, store, keys, issuer_url, key_id=None) -> IssuingCA``.
(The service builds it over its database and audit log.)

Issuing CAs use P-256 (ecdsa-with-SHA256): a P-384 key signs ~900 times a
second on this hardware, a P-256 key ~36,000, and issuance throughput is the
CA's signing rate. The root signs rarely and keeps the stronger curve.

Everything here is idempotent: ``init`` twice creates nothing the second time,
and a crash mid-way resumes with the key already generated.

Every lifecycle operation (init, rollover, csr, sign-issuing, install-issuing)
writes a ``ca_lifecycle`` audit entry in the transaction that makes the change,
and every refusal of one writes an entry of its own (CA/B BR 5.4.1: key
generation, certification of CA keys and CA events are recorded).

The offline root (``ca sign-issuing`` on the root's machine) certifies only
ECDSA P-256/P-384 keys (CA/B BR 6.1.5; the key stores sign with nothing else),
with AIA and CDP on the *online* machine's public URL, where the root's
certificate and CRL are served; ``install-issuing`` on the online machine
refuses a certificate whose key is not the pending one or whose AIA/CDP do
not name this machine's URLs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID

from ca import names, rfc5280
from ca.crl import crl_distribution_point
from ca.keys import KeyStore, KeyStoreError, Signer
from ca.ports import AlreadyRecorded, Authority, AuthorityStore, CertificateEntry
from ca.serials import new_serial, serial_hex
from ca.signing import sign_certificate, sign_crl, sign_csr

ROOT_CURVE = "P-384"
ISSUING_CURVE = "P-256"
ACTIVE_CACHE_SECONDS = 60.0
_BACKDATE = timedelta(minutes=5)  # tolerate relying parties whose clocks run a little slow
EVENT_LIFECYCLE = "ca_lifecycle"
ISSUING_CA_PROFILE = "issuing-ca"  # the root's certificates for issuing CAs, as recorded
MIN_RSA_BITS = 2048  # CA/B BR 6.1.5
_ISSUING_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}


class HierarchyError(Exception):
    """The operation does not fit the hierarchy's state; the message says what to do."""


def check_issuing_ca_key(public_key: object) -> None:
    """Refuse a key the root must not certify as an issuing CA (CA/B BR 6.1.5).

    The BR floor is RSA 2048 (modulus a multiple of 8) and ECDSA P-256, P-384
    or P-521; a Hoviyat issuing CA signs from a key store that holds ECDSA
    P-256 and P-384 only, so anything else could never sign and is refused too.
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name in _ISSUING_CURVES:
            return
        raise HierarchyError(
            f"the CSR's key is on curve {public_key.curve.name}: issuing CA keys are "
            "ECDSA P-256 or P-384 (CA/B BR 6.1.5)"
        )
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS or public_key.key_size % 8:
            raise HierarchyError(
                f"the CSR's key is RSA-{public_key.key_size}: CA/B BR 6.1.5 requires at "
                f"least {MIN_RSA_BITS} bits (a multiple of 8); issuing CA keys are ECDSA "
                "P-256 or P-384"
            )
        raise HierarchyError(
            f"the CSR's key is RSA-{public_key.key_size}: Hoviyat issuing CA keys are "
            "ECDSA P-256 or P-384 ('hoviyat ca csr' makes one)"
        )
    raise HierarchyError(
        f"the CSR's key is {type(public_key).__name__}: issuing CA keys are ECDSA "
        "P-256 or P-384 (CA/B BR 6.1.5)"
    )


def check_public_url(url: str) -> str:
    """The online machine's public base URL, as AIA and CDP will carry it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise HierarchyError(
            f"{url!r} is not the online machine's public base URL (http(s)://host[/path])"
        )
    return url.strip().rstrip("/")


def _uris(certificate: x509.Certificate) -> tuple[list[str], list[str]]:
    """(AIA caIssuers URIs, CDP full-name URIs) of a certificate."""
    ca_issuers: list[str] = []
    cdps: list[str] = []
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        ca_issuers = [
            str(d.access_location.value)
            for d in aia.value
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        ]
    except x509.ExtensionNotFound:
        pass
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        cdps = [str(n.value) for p in points.value for n in (p.full_name or [])]
    except x509.ExtensionNotFound:
        pass
    return ca_issuers, cdps


def key_id_of(certificate_or_key: x509.Certificate | Signer) -> str:
    public_key = certificate_or_key.public_key()
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


@dataclass(frozen=True)
class IssuingCA:
    """One key generation of a CA, ready to sign."""

    name: str
    generation: int
    key_id: str  # subject key identifier, hex; equals the AKI of what it signs
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # this CA's certificate first, up to the root
    signer: Signer
    issuer_url: str
    crl_partitions: int = 1

    @property
    def publication_name(self) -> str:
        return names.publication_name(self.name, self.generation)

    @property
    def ca_issuers_url(self) -> str:
        return names.ca_issuers_url(self.issuer_url, self.publication_name)

    @property
    def ocsp_url(self) -> str:
        return names.ocsp_url(self.issuer_url)

    @property
    def crl_url(self) -> str:
        return names.crl_url(self.issuer_url, self.publication_name)

    def crl_url_for(self, serial: int) -> str:
        """The CDP of the certificate with ``serial``: its CRL partition (ca/crl.py)."""
        return crl_distribution_point(
            names.http_base(self.issuer_url),
            self.name,
            serial,
            generation=self.generation,
            partitions=self.crl_partitions,
        )

    @property
    def delta_crl_url(self) -> str:
        return names.delta_crl_url(self.issuer_url, self.publication_name)

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return sign_certificate(builder, self.signer)

    def sign_tbs(self, tbs_certificate: bytes) -> bytes:
        """The DER signature of a TBSCertificate assembled by ``ca.rfc5280`` (file key or HSM)."""
        return self.signer.sign(tbs_certificate)

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        return sign_crl(builder, self.signer)


@dataclass
class Hierarchy:
    store: AuthorityStore
    keys: KeyStore
    issuer_url: str
    crl_partitions: int = 1
    """CRL partitions of issuing CA generations created from now on (HOVIYAT_CA_CRL_PARTITIONS)."""
    operator: str = "system"
    """Who runs the lifecycle operations, for their audit entries."""
    _cache: dict[tuple[str, str | None], tuple[float, IssuingCA]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- reading -----------------------------------------------------------------

    def authorities(self) -> list[Authority]:
        return self.store.authorities()

    def chain_of(self, row: Authority) -> tuple[x509.Certificate, ...]:
        chain: list[x509.Certificate] = []
        current: Authority | None = row
        while current is not None and current.certificate is not None:
            chain.append(x509.load_der_x509_certificate(current.certificate))
            if current.parent_key_id is None or current.parent_key_id == current.key_id:
                break
            current = self.store.authority_by_key_id(current.parent_key_id)
        return tuple(chain)

    def issuing_ca(self, name: str, key_id: str | None = None) -> IssuingCA:
        """The active generation of CA ``name`` (or the generation with ``key_id``)."""
        cache_key = (name, key_id.lower() if key_id else None)
        with self._lock:
            cached = self._cache.get(cache_key)
        # A key generation never changes; which one is active does (a rollover in
        # another process), so that answer is re-read after ACTIVE_CACHE_SECONDS.
        if cached is not None and (key_id or time.monotonic() - cached[0] < ACTIVE_CACHE_SECONDS):
            return cached[1]
        row = self.store.authority(name, key_id)
        if row is None or row.certificate is None:
            raise HierarchyError(
                f"no active CA {name!r}"
                + (f" with key id {key_id}" if key_id else "")
                + ": run 'hoviyat ca init'"
            )
        loaded = IssuingCA(
            name=row.name,
            generation=row.generation,
            key_id=row.key_id,
            certificate=x509.load_der_x509_certificate(row.certificate),
            chain=self.chain_of(row),
            signer=self.keys.load(row.key_ref),
            issuer_url=self.issuer_url,
            crl_partitions=row.crl_partitions,
        )
        with self._lock:
            self._cache[cache_key] = (time.monotonic(), loaded)
        return loaded

    def certificate_by_publication(self, publication: str) -> bytes | None:
        """DER of the CA certificate published as ``publication`` (AIA caIssuers)."""
        for row in self.store.authorities():
            if row.certificate is None:
                continue
            if names.publication_name(row.name, row.generation) == publication:
                return row.certificate
        return None

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- the audit trail of lifecycle operations ------------------------------------

    @contextmanager
    def _refusals_audited(self, operation: str) -> Iterator[None]:
        """A refused lifecycle operation leaves an audit entry (and nothing else)."""
        try:
            yield
        except HierarchyError as exc:
            with self.store.change() as changes:
                changes.audit(self.operator, operation, "refused", {"reason": str(exc)})
            raise

    @staticmethod
    def _detail(row: Authority) -> dict[str, object]:
        return {
            "ca": row.name,
            "generation": row.generation,
            "key_id": row.key_id,
            "key_ref": row.key_ref,
            "crl_partitions": row.crl_partitions,
        }

    # -- building ----------------------------------------------------------------

    def init(self, root_only: bool = False) -> list[str]:
        """Create what is missing of root + issuing CAs; returns what was created."""
        with self._refusals_audited("init"):
            return self._init(root_only)

    def _init(self, root_only: bool) -> list[str]:
        created: list[str] = []
        root_row = self.store.authority(names.ROOT, None)
        if root_row is None:
            self._create_root()
            created.append(names.ROOT)
        if root_only:
            return created
        root_row = self.store.authority(names.ROOT, None)
        if root_row is None or not self.keys_available(root_row):
            if all(self.store.authority(name, None) for name in names.ISSUING_CAS):
                return created
            raise HierarchyError(
                "the root key is offline: bring issuing CAs in with "
                "'hoviyat ca csr --issuing NAME' and 'hoviyat ca sign-issuing'"
            )
        for name in names.ISSUING_CAS:
            if self.store.authority(name, None) is None and not self.store.pending_authority(name):
                self._create_issuing(name, self._next_generation(name), "init")
                created.append(name)
        return created

    def keys_available(self, row: Authority) -> bool:
        try:
            self.keys.load(row.key_ref)
        except KeyStoreError:
            return False
        return True

    def _next_generation(self, name: str) -> int:
        return self.store.last_generation(name) + 1

    def _key(self, label: str, curve: str) -> Signer:
        # Resume after a crash between key generation and the database row.
        if self.keys.exists(label):
            return self.keys.load(self.keys.ref_for(label))
        return self.keys.generate(label, curve)

    def _store(self, row: Authority, operation: str, deactivate: str | None = None) -> None:
        """Add ``row`` (and retire the active generation of ``deactivate``), audited together."""
        detail = self._detail(row)
        try:
            with self.store.change() as changes:
                if deactivate is not None:
                    for key_id in changes.retire_active(deactivate):
                        detail["replaces_key_id"] = key_id
                changes.add_authority(row)
                changes.audit(
                    self.operator,
                    operation,
                    "created" if row.certificate else "requested",
                    detail,
                )
        except AlreadyRecorded:
            # Another process created the same generation first: theirs stands.
            pass
        self.forget()

    def _create_root(self) -> None:
        signer = self._key(f"{names.ROOT}-g1", ROOT_CURVE)
        subject = names.ca_subject(names.ROOT, 1)
        now = datetime.now(UTC)
        public_key = signer.public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(new_serial())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + timedelta(days=7305))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
        )
        certificate = sign_certificate(builder, signer)
        self._store(
            Authority(
                key_id=ski.digest.hex(),
                name=names.ROOT,
                generation=1,
                parent_key_id=None,
                certificate=certificate.public_bytes(Encoding.DER),
                key_ref=signer.key_ref,
                active=True,
            ),
            "init",
        )

    def _create_issuing(self, name: str, generation: int, operation: str) -> None:
        signer = self._key(f"{name}-g{generation}", ISSUING_CURVE)
        root = self.issuing_ca(names.ROOT)
        certificate = self.certify_issuing(
            root, signer.public_key(), name, generation, self.issuer_url
        )
        self._store(
            Authority(
                key_id=key_id_of(signer),
                name=name,
                generation=generation,
                parent_key_id=root.key_id,
                certificate=certificate.public_bytes(Encoding.DER),
                key_ref=signer.key_ref,
                active=True,
                crl_partitions=self.crl_partitions,
            ),
            operation,
            deactivate=name,
        )

    @staticmethod
    def certify_issuing(
        root: IssuingCA,
        public_key: object,
        name: str,
        generation: int,
        issuer_url: str,
        validity_days: int = 3652,
    ) -> x509.Certificate:
        """The root's certificate for an issuing CA key (pathLen 0, AIA and CDP of the root)."""
        now = datetime.now(UTC)
        not_after = min(now + timedelta(days=validity_days), root.certificate.not_valid_after_utc)
        root_publication = names.publication_name(root.name, root.generation)
        builder = (
            x509.CertificateBuilder()
            .subject_name(names.ca_subject(name, generation))
            .issuer_name(root.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(new_serial())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_key_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.signer.public_key()),
                critical=False,
            )
            .add_extension(
                rfc5280.authority_information_access(
                    ca_issuers=names.ca_issuers_url(issuer_url, root_publication)
                ),
                critical=False,
            )
            .add_extension(
                rfc5280.crl_distribution_points(names.crl_url(issuer_url, root_publication)),
                critical=False,
            )
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]
                ),
                critical=False,
            )
        )
        extended_key_usage = names.issuing_ca_extended_key_usage(name)
        if extended_key_usage is not None:
            builder = builder.add_extension(extended_key_usage, critical=False)
        return sign_certificate(builder, root.signer)

    # -- rollover and the offline root ---------------------------------------------

    def rollover(self, name: str) -> IssuingCA:
        """A new key generation for issuing CA ``name``; the old one stays valid, inactive."""
        with self._refusals_audited("rollover"):
            if name not in names.ISSUING_CAS:
                raise HierarchyError(
                    f"{name!r} is not an issuing CA ({', '.join(names.ISSUING_CAS)})"
                )
            if self.store.authority(name, None) is None:
                raise HierarchyError(
                    f"issuing CA {name!r} does not exist yet: run 'hoviyat ca init'"
                )
            root_row = self.store.authority(names.ROOT, None)
            if root_row is None or not self.keys_available(root_row):
                raise HierarchyError(
                    "the root key is offline: roll over with 'hoviyat ca csr --issuing "
                    f"{name}', 'ca sign-issuing' on the root's machine, 'ca install-issuing'"
                )
            self._create_issuing(name, self._next_generation(name), "rollover")
            return self.issuing_ca(name)

    def issuing_csr(self, name: str) -> x509.CertificateSigningRequest:
        """A CSR for a new generation of ``name``, for an offline root to sign."""
        with self._refusals_audited("csr"):
            return self._issuing_csr(name)

    def _issuing_csr(self, name: str) -> x509.CertificateSigningRequest:
        if name not in names.ISSUING_CAS:
            raise HierarchyError(f"{name!r} is not an issuing CA ({', '.join(names.ISSUING_CAS)})")
        pending = self.store.pending_authority(name)
        if pending is not None:
            signer = self.keys.load(pending.key_ref)
            generation = pending.generation
        else:
            generation = self._next_generation(name)
            signer = self._key(f"{name}-g{generation}", ISSUING_CURVE)
            self._store(
                Authority(
                    key_id=key_id_of(signer),
                    name=name,
                    generation=generation,
                    parent_key_id=None,
                    certificate=None,
                    key_ref=signer.key_ref,
                    active=False,
                    crl_partitions=self.crl_partitions,
                ),
                "csr",
            )
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            names.ca_subject(name, generation)
        )
        return sign_csr(builder, signer)

    def sign_issuing(
        self, csr: x509.CertificateSigningRequest, *, online_url: str
    ) -> x509.Certificate:
        """On the root's machine: certify the issuing CA key of ``csr``.

        ``online_url`` is the online machine's public base URL (its HOVIYAT_ISSUER):
        the issuing CA's AIA and CDP point there, where the root's certificate and
        its CRL ('ca import-crl') are served; the root's machine serves nothing.
        The certificate is recorded here, so 'ca revoke' and 'ca root-crl' can
        revoke it, and audited in the same transaction.
        """
        with self._refusals_audited("sign_issuing"):
            if not csr.is_signature_valid:
                raise HierarchyError("the CSR's signature does not verify")
            public_key = csr.public_key()
            check_issuing_ca_key(public_key)
            base_url = check_public_url(online_url)
            subject_cn = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
            cn = str(subject_cn[0].value) if subject_cn else ""
            for name in names.ISSUING_CAS:
                for generation in range(1, 100):
                    if names.ca_subject(name, generation) == csr.subject:
                        root = self.issuing_ca(names.ROOT)
                        certificate = self.certify_issuing(
                            root, public_key, name, generation, base_url
                        )
                        self._record_signed(root, certificate, name, generation, base_url)
                        return certificate
            raise HierarchyError(f"CSR subject {cn!r} is not a Hoviyat issuing CA name")

    def _record_signed(
        self,
        root: IssuingCA,
        certificate: x509.Certificate,
        name: str,
        generation: int,
        online_url: str,
    ) -> None:
        now = datetime.now(UTC)
        spki = certificate.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        serial = serial_hex(certificate.serial_number)
        entry = CertificateEntry(
            serial_hex=serial,
            issuer_ca=root.publication_name,
            issuer_key_id=root.key_id,
            profile=ISSUING_CA_PROFILE,
            subject=certificate.subject.rfc4514_string(),
            spki_sha256=hashlib.sha256(spki).hexdigest(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            requested_by=self.operator,
            request_reason="issuing CA key certified by the offline root",
            subject_hash=None,
            tracking_code=None,
        )
        with self.store.change() as changes:
            changes.add_certificate(entry, certificate.public_bytes(Encoding.DER), now)
            changes.audit(
                self.operator,
                "sign_issuing",
                "issued",
                {
                    "ca": name,
                    "generation": generation,
                    "key_id": key_id_of(certificate),
                    "serial": serial,
                    "issuer_key_id": root.key_id,
                    "online_url": online_url,
                    "not_after": certificate.not_valid_after_utc.isoformat(),
                    "issuance": "ceremony",
                },
            )

    def install_issuing(self, chain: list[x509.Certificate]) -> str:
        """On the server: install an issuing CA certificate (and its root) signed offline."""
        with self._refusals_audited("install_issuing"):
            return self._install_issuing(chain)

    def _pending_for(self, issuing: x509.Certificate) -> Authority:
        """The pending generation (made by 'ca csr' here) that ``issuing`` certifies."""
        for name in names.ISSUING_CAS:
            pending = self.store.pending_authority(name)
            if pending is None or names.ca_subject(name, pending.generation) != issuing.subject:
                continue
            if pending.key_id != key_id_of(issuing):
                raise HierarchyError(
                    f"the certificate's key is not the pending key of {name} generation "
                    f"{pending.generation} (the one 'ca csr' made here): refusing it"
                )
            return pending
        raise HierarchyError(
            "this certificate's subject and key match no pending request here ('ca csr' first)"
        )

    def _check_urls(self, issuing: x509.Certificate, root_row: Authority) -> None:
        """AIA and CDP must name this machine's URLs for the root's certificate and CRL."""
        publication = names.publication_name(names.ROOT, root_row.generation)
        expected_issuers = [names.ca_issuers_url(self.issuer_url, publication)]
        expected_cdps = [names.crl_url(self.issuer_url, publication)]
        ca_issuers, cdps = _uris(issuing)
        if ca_issuers != expected_issuers or cdps != expected_cdps:
            raise HierarchyError(
                f"the certificate's AIA {ca_issuers} / CDP {cdps} do not name this machine's "
                f"{expected_issuers} / {expected_cdps}: sign it again with "
                f"'ca sign-issuing --online-url {names.http_base(self.issuer_url)}'"
            )

    def _install_issuing(self, chain: list[x509.Certificate]) -> str:
        if not chain:
            raise HierarchyError("no certificate given")
        issuing = chain[0]
        pending = self._pending_for(issuing)
        root_row = self.store.authority(names.ROOT, None)
        root_cert = chain[1] if len(chain) > 1 else None
        new_root: Authority | None = None
        if root_row is None:
            if root_cert is None:
                raise HierarchyError("the root certificate is unknown here: pass the full chain")
            try:
                root_cert.verify_directly_issued_by(root_cert)
            except (ValueError, TypeError, InvalidSignature) as exc:
                raise HierarchyError(f"the chain's root is not self-signed: {exc}") from exc
            new_root = root_row = Authority(
                key_id=key_id_of(root_cert),
                name=names.ROOT,
                generation=1,
                certificate=root_cert.public_bytes(Encoding.DER),
                key_ref="offline:root-g1",
                active=True,
            )
        root_certificate = x509.load_der_x509_certificate(root_row.certificate or b"")
        try:
            issuing.verify_directly_issued_by(root_certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise HierarchyError(f"the certificate was not issued by this root: {exc}") from exc
        self._check_urls(issuing, root_row)
        with self.store.change() as changes:
            if new_root is not None:
                changes.add_authority(new_root)
                changes.audit(
                    self.operator, "install_issuing", "root_installed", self._detail(new_root)
                )
            detail = self._detail(pending)
            for key_id in changes.retire_active(pending.name):
                detail["replaces_key_id"] = key_id
            changes.install(pending.key_id, issuing.public_bytes(Encoding.DER), root_row.key_id)
            detail["serial"] = serial_hex(issuing.serial_number)
            detail["not_after"] = issuing.not_valid_after_utc.isoformat()
            changes.audit(self.operator, "install_issuing", "installed", detail)
        self.forget()
        return pending.name


def ca_key_usage() -> x509.KeyUsage:
    """A CA certificate's key usage (RFC 5280 4.2.1.3): certificates and CRLs, nothing else."""
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def load_issuing_ca(
    name: str,
    *,
    store: AuthorityStore,
    keys: KeyStore,
    issuer_url: str,
    key_id: str | None = None,
) -> IssuingCA:
    """The signing material of CA ``name`` (active generation, or the one with ``key_id``)."""
    return Hierarchy(store, keys, issuer_url).issuing_ca(name, key_id)
