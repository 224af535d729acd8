"""Request and answer bodies of the verification API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.http.schema import StrictModel

FieldResult = Literal["match", "mismatch", "not_checked"]
Text = Field(default=None, max_length=200)


class Strict(StrictModel):
    model_config = ConfigDict(str_strip_whitespace=True)


class PersonVerifyRequest(Strict):
    national_code: str = Field(max_length=40, description="10 digits, any digit script")
    birth_date: str | None = Field(default=None, max_length=40, description="ISO or Jalali")
    first_name: str | None = Text
    last_name: str | None = Text
    father_name: str | None = Text
    national_card_serial: str | None = Field(default=None, max_length=40)
    postal_code: str | None = Field(default=None, max_length=40)


class MobileVerifyRequest(Strict):
    national_code: str = Field(max_length=40)
    mobile: str = Field(max_length=40, description="09XXXXXXXXX, +98..., any digit script")


class EntityVerifyRequest(Strict):
    national_id: str = Field(max_length=40, description="11 digits, any digit script")
    name: str | None = Text
    registration_number: str | None = Field(default=None, max_length=40)


class RepresentativeVerifyRequest(Strict):
    national_code: str = Field(max_length=40)


class VerificationAnswer(BaseModel):
    tracking_code: str
    match: bool
    fields: dict[str, FieldResult] = Field(default_factory=dict)
    disclosed: dict[str, Any] = Field(default_factory=dict)


class EntityAnswer(VerificationAnswer):
    status: str | None = None


class RepresentativeAnswer(BaseModel):
    tracking_code: str
    match: bool
    role: str | None = None
    signing_authority: str | None = None
    valid_until: str | None = None


class IdentifierCheck(BaseModel):
    valid: bool
    value: str | None = None
    rule: str | None = None
    message: str | None = None
    warnings: list[str] = Field(default_factory=list)
