"""One verification transaction: policy check, rate limits, registry call, record.

Every answer and every refusal writes exactly one audit entry with a fresh
tracking code. The answer's record and rate counters commit in one
transaction; a refusal commits its record before the problem is returned.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.http.auth import Caller
from idp.problems import Problem, service_unavailable, too_many_requests
from idp.ratelimit import Limit, count, exceeded, prune
from idp.tracking import new_tracking_code
from verifiers.identifiers import IdentifierError
from verifiers.registry import RegistryUnavailable

T = TypeVar("T")


def identifier_problem(error: IdentifierError) -> Problem:
    return Problem(
        422,
        "invalid-identifier",
        "Invalid identifier",
        error.message,
        field=error.field,
        rule=error.rule,
    )


@dataclass
class Verification:
    hoviyat: Hoviyat
    caller: Caller
    operation: str
    tracking_code: str = field(default_factory=new_tracking_code)
    subject: str | None = None

    def _event(self, outcome: str, detail: dict[str, Any]) -> AuditEvent:
        pepper = self.hoviyat.secrets.subject_pepper
        return AuditEvent(
            tracking_code=self.tracking_code,
            event_type="verification",
            actor_type="client",
            actor_id=self.caller.client_id,
            service_code=self.caller.service_code,
            legal_basis=self.caller.policy.legal_basis,
            operation=self.operation,
            subject_hash=subject_hash(pepper, self.subject) if self.subject else None,
            outcome=outcome,
            detail=detail,
        )

    def _limits(self) -> list[Limit]:
        limits = self.caller.policy.rate_limits
        items = [Limit(f"c:{self.caller.client_id}", limits.per_client_per_minute)]
        if self.subject:
            digest = subject_hash(self.hoviyat.secrets.subject_pepper, self.subject)[:32]
            items.append(Limit(f"s:{self.caller.client_id}:{digest}", limits.per_subject_per_minute))
        return items

    def refuse(self, problem: Problem) -> Problem:
        with self.hoviyat.db.session() as session:
            append(session, self._event("refused", {"problem": problem.slug}))
        problem.extensions.setdefault("tracking_code", self.tracking_code)
        return problem

    def run(self, decide: Callable[[Verification], tuple[str, T]]) -> T:
        """``decide`` validates input, sets ``subject`` and asks the registries."""
        try:
            self.caller.require_operation(self.operation)
            outcome, answer = self._decide(decide)
        except Problem as problem:
            raise self.refuse(problem) from None
        with self.hoviyat.db.session() as session:
            count(session, self._limits(), self.hoviyat.settings.rate_limit_window_seconds)
            append(session, self._event(outcome, {}))
            if random.random() < 0.001:  # noqa: S311 - housekeeping, not security
                prune(session, self.hoviyat.settings.rate_limit_window_seconds)
        return answer

    def _decide(self, decide: Callable[[Verification], tuple[str, T]]) -> tuple[str, T]:
        try:
            return decide(self)
        except IdentifierError as error:
            raise identifier_problem(error) from None
        except RegistryUnavailable as outage:
            raise service_unavailable(
                f"the {outage.registry} registry cannot answer now; retry later",
                outage.retry_after,
            ) from None

    def check_rate(self) -> None:
        """Refuse with 429 once the client or this subject has used up its window."""
        window = self.hoviyat.settings.rate_limit_window_seconds
        with self.hoviyat.db.read() as session:
            retry_after = exceeded(session, self._limits(), window)
        if retry_after is not None:
            raise too_many_requests(
                f"rate limit of service policy {self.caller.service_code!r} reached",
                retry_after,
            )
