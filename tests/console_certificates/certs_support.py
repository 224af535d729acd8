"""Helpers of the certificates console tests: issuing through the console, asking OCSP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
from console_support import csrf_token
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from idp.storage.certificates import CertificateRecord


def issue_form_token(browser: TestClient) -> str:
    return csrf_token(browser.get("/console/certs/issue").text)


def issue(
    browser: TestClient,
    csr: bytes,
    profile: str,
    *,
    as_file: bool = True,
    token: str | None = None,
    **fields: str,
) -> httpx.Response:
    data = {"profile": profile, "csrf_token": token or issue_form_token(browser), **fields}
    if as_file:
        return browser.post(
            "/console/certs/issue",
            data=data,
            files={"csr_file": ("request.csr", csr, "application/pkcs10")},
        )
    return browser.post("/console/certs/issue", data={**data, "csr_text": csr.decode()})


def serial_of(location: str) -> str:
    return parse_qs(urlparse(location).query)["serial"][0]


def certificate_count(app: FastAPI, profile: str | None = None) -> int:
    with app.state.hoviyat.db.session() as db:
        query = select(func.count()).select_from(CertificateRecord)
        if profile:
            query = query.where(CertificateRecord.profile == profile)
        return int(db.exec(query).one())


def record(app: FastAPI, serial: str) -> CertificateRecord:
    with app.state.hoviyat.db.session() as db:
        found = db.get(CertificateRecord, serial)
    assert found is not None
    return found


def ocsp_status(app: FastAPI, browser: TestClient, serial: str) -> ocsp.OCSPResponse:
    """Ask the app's own /ocsp about ``serial`` (POST, DER), as a relying party does."""
    row = record(app, serial)
    assert row.der is not None
    certificate = x509.load_der_x509_certificate(row.der)
    pki = app.state.hoviyat_pki  # the app's own, built by the pages already
    issuer = pki.hierarchy.issuing_ca(row.issuer_ca.split("-g")[0]).certificate
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answer = browser.post(
        "/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}
    )
    assert answer.status_code == 200, answer.text
    parsed = ocsp.load_der_ocsp_response(answer.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return parsed
