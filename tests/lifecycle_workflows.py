"""A job workflow that can end every way a workflow can: the lifecycle tests drive it."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ironflow_py import Decision, Workflow
from ironflow_py.lifecycle import Cancelled, CancelRequest, Completed, Failed, RunOutcome, TimedOut


@attrs.frozen
class StartJob:
    job_id: str
    #: Schedule a timer this far ahead (seconds) delivering `Poke`; None: no timer.
    timer_in: float | None = None
    #: Enqueue this many `Work` effects.
    work: int = 0


@attrs.frozen
class Poke:
    job_id: str


@attrs.frozen
class EndJob:
    job_id: str
    how: str  # completed, failed, cancelled, timed_out
    value: int = 0
    key: str | None = None


@attrs.frozen
class CancelJob:
    job_id: str
    reason: str
    request_id: str | None


@attrs.frozen
class MoreWork:
    job_id: str
    n: int


@attrs.frozen
class JobDeadline:
    job_id: str
    deadline: datetime


JobInput = StartJob | Poke | EndJob | CancelJob | JobDeadline | MoreWork


@attrs.frozen
class JobStarted:
    pass


@attrs.frozen
class Poked:
    pass


@attrs.frozen
class JobEnded:
    how: str
    value: int = 0
    reason: str | None = None
    at: datetime | None = None


JobEvent = JobStarted | Poked | JobEnded


@attrs.frozen
class Work:
    job_id: str
    n: int


@attrs.frozen
class JobResult:
    value: int


@attrs.frozen
class JobState:
    started: bool = False
    pokes: int = 0
    ended: JobEnded | None = None


class JobWorkflow(Workflow[JobState, JobInput, JobEvent, Work]):
    type = "job"
    inputs = {
        "job.start/1": StartJob,
        "job.poke/1": Poke,
        "job.end/1": EndJob,
        "job.cancel/1": CancelJob,
        "job.deadline/1": JobDeadline,
        "job.more_work/1": MoreWork,
    }
    events = {"job.started/1": JobStarted, "job.poked/1": Poked, "job.ended/1": JobEnded}
    effects = {"job.work/1": Work}
    result_type = JobResult

    def initial_state(self) -> JobState:
        return JobState()

    def workflow_id(self, input: JobInput) -> str:
        return input.job_id

    def input_key(self, input: JobInput) -> str | None:
        return input.key if isinstance(input, EndJob) else None

    def outcome(self, state: JobState) -> RunOutcome | None:
        ended = state.ended
        if ended is None:
            return None
        if ended.how == "completed":
            return Completed(JobResult(ended.value))
        if ended.how == "failed":
            return Failed("boom", {"value": ended.value})
        if ended.how == "cancelled":
            return Cancelled(ended.reason)
        assert ended.at is not None
        return TimedOut(ended.at)

    def cancel_input(self, request: CancelRequest) -> JobInput | None:
        return CancelJob(request.workflow_id, request.reason, request.request_id)

    def evolve(self, state: JobState, event: JobEvent) -> JobState:
        match event:
            case JobStarted():
                return attrs.evolve(state, started=True)
            case Poked():
                return attrs.evolve(state, pokes=state.pokes + 1)
            case JobEnded():
                return attrs.evolve(state, ended=event)
        raise TypeError(event)

    def decide(self, now: datetime, state: JobState, input: JobInput) -> Decision[JobEvent, Work]:
        match input:
            case StartJob(job_id=jid, timer_in=timer_in, work=work):
                decision = Decision.accept(JobStarted()).with_effect(*(Work(jid, n) for n in range(work)))
                if timer_in is not None:
                    decision = decision.with_timer("poke", now + timedelta(seconds=timer_in), Poke(jid))
                return decision
            case Poke():
                return Decision.accept(Poked())
            case EndJob(how=how, value=value):
                return Decision.accept(JobEnded(how, value, at=now if how == "timed_out" else None))
            case CancelJob(reason=reason):
                return Decision.accept(JobEnded("cancelled", reason=reason))
            case MoreWork(job_id=jid, n=n):
                return Decision.accept().with_effect(Work(jid, n))
            case JobDeadline(deadline=deadline):
                return Decision.accept(JobEnded("timed_out", at=deadline))
        raise TypeError(input)
