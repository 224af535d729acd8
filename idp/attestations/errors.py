"""The one failure of attestation checking: which check failed (stable name) and why."""

from __future__ import annotations


class AttestationInvalid(Exception):
    """``check`` names the failed check (e.g. ``disclosure_unreferenced``); ``detail`` explains."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail
