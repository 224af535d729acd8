"""Why a certificate request was refused: one exception, a stable slug, an actionable detail."""

from __future__ import annotations


class CertificateRefused(Exception):
    """The request is refused and nothing was written; HTTP maps it to a problem document."""

    def __init__(self, slug: str, detail: str, status: int = 400, retry_after: int = 0) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
