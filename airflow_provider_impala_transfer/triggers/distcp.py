"""A deferred distcp task's YARN job, watched from the triggerer (as ``LivyTrigger`` watches a batch).

The task submits the job (``hadoop distcp -async``) and defers: its worker slot is free while the
job copies. :class:`DistcpJobTrigger` polls the ResourceManager's REST API for the application's
state, logging its progress at every poll, backing off from ``poll_interval`` to
``max_poll_interval``, and fires once the application has ended (or ``timeout`` passed: then it
kills the application first). The task resumes in ``execute_complete``, which removes the staged
copies and verifies the delivery as the synchronous path does.

A user who marks the deferred task failed or clears it stops the job too (:meth:`on_kill`); a
triggerer that restarts or hands the trigger to another triggerer does not.

Only plain values travel in ``serialize()`` (the application, the ResourceManager's address, the
intervals): never a keytab or a ticket. A Kerberized ResourceManager is asked with SPNEGO, with the
triggerer's own ticket (Airflow's ``airflow kerberos`` renewer, ``[core] security = kerberos``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_impala_transfer.core.errors import ImpalaTransferError
from airflow_provider_impala_transfer.core.transfer.yarn import ResourceManager, YarnApplication

FAILED_POLLS_ALLOWED = 5  # in a row: the ResourceManager restarting, a network blip


class DistcpJobTrigger(BaseTrigger):
    """Fires ``{"status": "ended", "application": {...}}`` once the YARN application has ended (its
    fields as :class:`YarnApplication`), ``{"status": "error", "message": ...}`` when the
    ResourceManager cannot say or the job ran over ``timeout`` (then it was killed).

    :param application_id: ``application_<cluster timestamp>_<n>``.
    :param resource_manager: ``http(s)://host:port`` of the ResourceManager's web API.
    :param poll_interval: seconds between the first polls; grows by half each poll up to
        ``max_poll_interval``.
    :param timeout: seconds from the trigger's start after which the job is killed (None: never).
    """

    def __init__(self, application_id: str, resource_manager: str, *, poll_interval: float = 5.0,
                 max_poll_interval: float = 60.0, timeout: float | None = None, started: float | None = None,
                 kill_wait: float = 10.0) -> None:
        super().__init__()
        self.application_id = application_id
        self.resource_manager = resource_manager
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.started = started if started is not None else time.time()  # wall clock: survives a move
        self.kill_wait = kill_wait

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "application_id": self.application_id, "resource_manager": self.resource_manager,
            "poll_interval": self.poll_interval, "max_poll_interval": self.max_poll_interval,
            "timeout": self.timeout, "started": self.started, "kill_wait": self.kill_wait})

    def _rm(self) -> ResourceManager:
        return ResourceManager(self.resource_manager)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        rm, interval, failures = self._rm(), self.poll_interval, 0
        while True:
            try:
                app = await asyncio.to_thread(rm.application, self.application_id)
            except ImpalaTransferError as exc:
                failures += 1
                self.log.warning("polling %s failed (%d of %d in a row): %s", self.application_id, failures,
                                 FAILED_POLLS_ALLOWED, exc)
                if failures >= FAILED_POLLS_ALLOWED:
                    yield TriggerEvent({"status": "error", "message": f"the ResourceManager did not say what "
                                        f"became of {self.application_id}: {exc}"})
                    return
            else:
                failures = 0
                self.log.info("distcp job %s", app.describe())
                if app.ended:
                    yield TriggerEvent({"status": "ended", "application": dataclasses.asdict(app)})
                    return
            if self.timeout is not None and time.time() - self.started > self.timeout:
                message = f"{self.application_id} ran over {self.timeout:.0f}s"
                try:
                    await asyncio.to_thread(rm.kill, self.application_id, wait=self.kill_wait, log=self.log.info)
                    message += " and was killed"
                except ImpalaTransferError as exc:
                    message += f"; killing it failed: {exc}"
                yield TriggerEvent({"status": "error", "message": message})
                return
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval)

    async def on_kill(self) -> None:
        """The user stopped the deferred task (mark failed, clear): the job must not copy on."""
        await asyncio.to_thread(self._rm().kill, self.application_id, wait=self.kill_wait, log=self.log.info)


def application_from_event(event: dict[str, Any]) -> YarnApplication:
    return YarnApplication(**event["application"])
