"""YARN applications: which one a client submitted, what the ResourceManager says of it, and the kill.

A MapReduce client (``hadoop distcp``) submits one application and then only watches it: killing the
client leaves the application running (DistCp's shutdown hook returns once the job is submitted).
So whoever runs such a client reads from its output which application it submitted
(:class:`SubmittedJob`) and, when the client fails, times out or is stopped, kills that application
through the ResourceManager's REST API (:class:`ResourceManager`) before anything else writes where
the job was writing.

What the client prints (Hadoop 3.5.0, ``org.apache.hadoop.mapreduce.Job`` and DistCp at INFO):
``Running job: job_1765152000000_0001``, ``The url to track the job:
http://rm:8088/proxy/application_1765152000000_0001/`` and, at the end, ``Job job_..._0001 completed
successfully`` or ``Job job_..._0001 failed with state FAILED due to: ...``; YARN's own client adds
``Submitted application application_1765152000000_0001``. A job on the local job runner is
``job_local<n>_0001``: no application, nothing to kill.

The ResourceManager's address: the one given (a ``yarn`` connection, ``--yarn-rm-url``), else the
tracking URL's: YARN's web proxy runs inside the ResourceManager unless a cluster sets
``yarn.web-proxy.address``, and then the address must be given.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_impala_transfer.core.common.gssapi import spnego
from airflow_provider_impala_transfer.core.errors import TransferError

FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
_APPLICATION = re.compile(r"\bSubmitted application (application_\d+_\d+)\b")
_JOB = re.compile(r"\b(?:Running job:|DistCp job-id:|Job)\s+job_(\d+_\d+)\b")
_TRACKING = re.compile(r"The url to track the job: (https?://[^\s/]+)/")
_ENDED = re.compile(r"\bJob job_\d+_\d+ (?:completed successfully|failed with state|finished)")


def application_of(job_id: str) -> str:
    """``job_1765152000000_0001`` -> ``application_1765152000000_0001`` (MapReduce names its job
    after its application)."""
    return "application_" + job_id.removeprefix("job_")


def job_of(application_id: str) -> str:
    return "job_" + application_id.removeprefix("application_")


@dataclass
class SubmittedJob:
    """What a MapReduce client's output said so far: fed line by line while the client runs
    (``CommandRunner.run(watch=...)``), read when it has ended or is being stopped."""

    application_id: str | None = None
    tracking_root: str | None = None  # http(s)://host:port of the tracking URL
    ended: bool = False  # the client saw the job end (success or failure): nothing left to kill

    def read(self, line: str) -> None:
        if self.application_id is None:
            if match := _APPLICATION.search(line):
                self.application_id = match[1]
            elif match := _JOB.search(line):
                self.application_id = application_of("job_" + match[1])
        if self.tracking_root is None and (match := _TRACKING.search(line)):
            self.tracking_root = match[1]
        if _ENDED.search(line):
            self.ended = True

    @property
    def running(self) -> bool:
        """Submitted to YARN and not seen ending: may still be copying."""
        return self.application_id is not None and not self.ended


@dataclass(frozen=True)
class YarnApplication:
    """One application as the ResourceManager's REST API describes it (``GET
    /ws/v1/cluster/apps/{id}`` -> ``{"app": {...}}``)."""

    id: str
    state: str  # NEW, NEW_SAVING, SUBMITTED, ACCEPTED, RUNNING, FINISHED, FAILED, KILLED
    final_status: str = "UNDEFINED"  # SUCCEEDED, FAILED, KILLED once it has ended
    progress: float = 0.0  # percent
    diagnostics: str = ""
    name: str = ""
    queue: str = ""
    tracking_url: str = ""

    @classmethod
    def from_rest(cls, app: dict[str, Any]) -> YarnApplication:
        return cls(id=app["id"], state=app.get("state", ""), final_status=app.get("finalStatus", "UNDEFINED"),
                   progress=float(app.get("progress") or 0.0), diagnostics=app.get("diagnostics") or "",
                   name=app.get("name", ""), queue=app.get("queue", ""), tracking_url=app.get("trackingUrl") or "")

    @property
    def ended(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "FINISHED" and self.final_status == "SUCCEEDED"

    def describe(self) -> str:
        """``application_..._0001 (queue etl): RUNNING, 42%``, the diagnostics' first line once it failed."""
        words = f"{self.id} (queue {self.queue or '?'}): {self.state}"
        if self.ended:
            words += f", {self.final_status}"
        else:
            words += f", {self.progress:.0f}%"
        reason = first_line(self.diagnostics)
        if reason and not self.succeeded:
            words += f": {reason}"
        return words


_REFUSED = re.compile(r"Failed to submit (application_\d+_\d+) to YARN : (.+)")
_SUBMITTED_BY = re.compile(r"^Application \S+ submitted by user \S+?(?=Application )")


def refusal(output: str) -> str | None:
    """The ResourceManager's reason when it refused a submission (an unknown queue, a queue ACL,
    resources over the queue's maximum), from the client's output: ``YarnException: Failed to
    submit application_... to YARN : <reason>`` (Hadoop 3.5.0 repeats the reason's first words)."""
    match = _REFUSED.search(output)
    if match is None:
        return None
    return f"YARN refused {match[1]}: {_SUBMITTED_BY.sub('', match[2].strip())}"


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


@dataclass
class ResourceManager:
    """The ResourceManager's REST API (``/ws/v1/cluster``): an application's state, and its kill.

    ``auth``: a ``requests`` auth object (SPNEGO on a Kerberized cluster); ``session`` a
    ``requests.Session`` (made when first needed). Every call is bounded by ``timeout``."""

    url: str  # http(s)://host:port
    auth: Any = dataclasses.field(default_factory=lambda: spnego())
    timeout: float = 10.0
    session: Any = None

    def _session(self) -> None:
        if self.session is None:
            import requests

            self.session = requests.Session()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self._session()
        url = self.url.rstrip("/") + path
        try:
            answer = self.session.request(method, url, auth=self.auth, timeout=self.timeout,
                                          headers={"Accept": "application/json"}, **kwargs)
        except Exception as exc:  # refused, timed out, DNS: the ResourceManager did not answer
            raise TransferError(f"YARN ResourceManager {self.url}: {exc}") from exc
        if answer.status_code >= 400:
            raise TransferError(f"YARN ResourceManager {method} {url}: HTTP {answer.status_code} "
                                f"{_remote_message(answer)}")
        return answer.json() if answer.content else {}

    def application(self, application_id: str) -> YarnApplication:
        return YarnApplication.from_rest(self._request("GET", f"/ws/v1/cluster/apps/{application_id}")["app"])

    def job_counters(self, application_id: str) -> dict[str, dict[str, int]]:
        """A finished MapReduce job's counters, ``{group: {counter: total}}``, from the JobHistory
        server the ResourceManager's proxy redirects a finished application to (so its address
        needs no setting): ``GET /ws/v1/history/mapreduce/jobs/{job}/counters``."""
        self._session()
        url = f"{self.url.rstrip('/')}/proxy/{application_id}/"
        try:
            answer = self.session.get(url, auth=self.auth, timeout=self.timeout, allow_redirects=False)
        except Exception as exc:
            raise TransferError(f"YARN ResourceManager {self.url}: {exc}") from exc
        location = answer.headers.get("Location", "")
        if "/jobhistory/" not in location:
            raise TransferError(f"{url} does not lead to a JobHistory server (HTTP {answer.status_code}"
                                f"{', to ' + location if location else ''})")
        history = ResourceManager(location.split("/jobhistory/")[0], auth=self.auth, timeout=self.timeout,
                                  session=self.session)
        groups = history._request("GET", f"/ws/v1/history/mapreduce/jobs/{job_of(application_id)}/counters")
        return {group["counterGroupName"]: {c["name"]: int(c["totalCounterValue"]) for c in _listed(group.get("counter"))}
                for group in _listed((groups.get("jobCounters") or {}).get("counterGroup"))}

    def request_kill(self, application_id: str) -> None:
        """Ask the ResourceManager to kill the application (it answers at once, 202 while it kills)."""
        self._request("PUT", f"/ws/v1/cluster/apps/{application_id}/state", json={"state": "KILLED"})

    def kill(self, application_id: str, *, wait: float = 10.0, poll: float = 0.25,
             log: Callable[[str], None] = lambda message: None) -> YarnApplication:
        """Kill the application unless it has ended, and return once the ResourceManager says it
        has (KILLED, or FINISHED/FAILED if it ended first). Raises when it has not within ``wait``
        seconds: its job may still be writing."""
        app = self.application(application_id)
        if not app.ended:
            log(f"killing YARN application {app.describe()}")
            self.request_kill(application_id)
        deadline = time.monotonic() + wait
        while not app.ended:
            if time.monotonic() >= deadline:
                raise TransferError(f"YARN application {application_id} was asked to stop but is still "
                                    f"{app.state} after {wait:.0f}s: its job may still write (kill it: "
                                    f"yarn application -kill {application_id})")
            time.sleep(poll)
            app = self.application(application_id)
        log(f"YARN application {app.describe()}")
        return app


def _listed(value: Any) -> list[Any]:
    """Hadoop's REST JSON (Jersey) writes a list of one as that one object, and none as nothing."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _remote_message(answer: Any) -> str:
    """The RemoteException's message of a refused call, else the start of the body."""
    try:
        return answer.json()["RemoteException"]["message"]
    except Exception:
        return answer.text[:300]

