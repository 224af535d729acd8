"""One verification transaction: policy check, rate limits, registry call, record.

Every answer and every refusal writes exactly one audit entry with a fresh
tracking code. The answer is returned only after its entry has committed
(through the group committer); a refusal commits its entry before the
problem is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from idp.audit.log import AuditEvent, audit_entry, subject_hash
from idp.context import Hoviyat
from idp.http.auth import Caller
from idp.problems import Problem, service_unavailable, too_many_requests
from idp.ratelimit import Limit
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
    _hashed: tuple[str, str] | None = field(default=None, repr=False)

    def _event(self, outcome: str, detail: dict[str, Any]) -> AuditEvent:
        return self.caller.audit_event(
            tracking_code=self.tracking_code,
            event_type="verification",
            operation=self.operation,
            subject_hash=self._subject_hash(),
            outcome=outcome,
            detail=detail,
        )

    def _subject_hash(self) -> str | None:
        if not self.subject:
            return None
        # Asked for by the rate check, the limits and the record: hash once.
        if self._hashed is None or self._hashed[0] != self.subject:
            self._hashed = (
                self.subject,
                subject_hash(self.hoviyat.secrets.subject_pepper, self.subject),
            )
        return self._hashed[1]

    def _limits(self) -> list[Limit]:
        limits = self.caller.policy.rate_limits
        items = [Limit(f"c:{self.caller.client_id}", limits.per_client_per_minute)]
        digest = self._subject_hash()
        if digest:
            items.append(
                Limit(f"s:{self.caller.client_id}:{digest[:32]}", limits.per_subject_per_minute)
            )
        return items

    async def refuse(self, problem: Problem) -> Problem:
        event = self._event("refused", {"problem": problem.slug})
        await self.hoviyat.committer.run(audit_entry(event))
        problem.extensions.setdefault("tracking_code", self.tracking_code)
        return problem

    async def run(self, decide: Callable[[Verification], tuple[str, T]]) -> T:
        """``decide`` validates input, sets ``subject`` and asks the registries.

        It runs in the worker's thread pool when the registry adapter blocks on
        the network, and inline when the registry is in-process.
        """
        try:
            self.caller.require_operation(self.operation)
            if self.hoviyat.registries.blocking:
                outcome, answer = await run_in_threadpool(self._decide, decide)
            else:
                outcome, answer = self._decide(decide)
        except Problem as problem:
            raise await self.refuse(problem) from None
        self.hoviyat.rate_limiter.count(self._limits())
        await self.hoviyat.committer.run(audit_entry(self._event(outcome, {})))
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
        retry_after = self.hoviyat.rate_limiter.retry_after(self._limits())
        if retry_after is not None:
            raise too_many_requests(
                f"rate limit of service policy {self.caller.service_code!r} reached",
                retry_after,
            )
