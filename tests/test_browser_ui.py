"""The Airflow UI in a real browser: Debian's Chromium, headless, driven by Playwright
(tests/support/browser.py), against the session's Celery deployment (PostgreSQL, Redis,
api-server, scheduler, dag-processor, two workers with ``airflow kerberos`` beside each, on the
Kerberized stack; tests/support/airflow_deployment.py).

What a user does: sign in, open the example DAG, fill its Params form and trigger it, watch the
grid and the run's task instances say per chunk which method failed and which delivered; open Add
Connection and find the provider's own fields for ``impala_transfer``.

Screenshots: into tmp_path, or into ``$IMPALA_TRANSFER_SCREENSHOTS`` (e.g. ``docs/screenshots``)
to refresh the committed ones.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from airflow_provider_impala_transfer import get_provider_info
from tests.conftest import EVENTS_ROWS
from tests.support.browser import chromium_page, screenshot_dir, sign_in
from tests.support.hdfs_files import hdfs_get

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAG_ID = "impala_transfer_example"
CHUNKS = 4  # 20,000 rows of default.events by 5,000
KILLED_CHUNK = 3


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


class DistcpKiller:
    """Kills (SIGKILL) each distcp JVM the deployment starts for one chunk of one run, as soon as
    it shows up: the job dies as one killed by YARN or the OOM killer would, a real failure of the
    real tool, and the next method has to deliver the chunk. Only processes of the deployment's
    trees whose distcp listing names this run and chunk; every other one runs.

    Why not a refusal planted in advance, as tests/test_transfer_dags.py does with a read-only
    staging directory: on this deployment the extract hands the chunks over on cluster1 and distcp
    copies them from there, so there is no staging step of distcp's own to refuse, and whatever
    distcp reads or writes, hdfs put reads or writes too."""

    def __init__(self, deployment, run_id: str, chunk: int, interval: float = 0.2) -> None:
        self.deployment, self.run_id, self.interval = deployment, run_id, interval
        self.listing_suffix = f"-chunk-{chunk:05d}.list"
        self.killed: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _ours(self, cmdline: list[str]) -> bool:
        return "org.apache.hadoop.tools.DistCp" in cmdline and any(
            arg.startswith("file://") and self.run_id in arg and arg.endswith(self.listing_suffix) for arg in cmdline)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for root in self.deployment.pids().values():
                try:
                    tree = psutil.Process(root).children(recursive=True)
                except psutil.NoSuchProcess:
                    continue
                for process in tree:
                    try:
                        cmdline = process.cmdline()
                        if self._ours(cmdline):
                            process.kill()
                            self.killed.append(cmdline)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue

    def __enter__(self) -> DistcpKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def fill_params_form(page, run_id: str, conf: dict) -> None:
    """The trigger dialog: a run id under Advanced Options, then every Param in Run Parameters."""

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    dialog.get_by_role("button", name="Advanced Options").click()  # one section open at a time
    dialog.locator('input[name="dagRunId"]').fill(run_id)
    dialog.get_by_role("button", name="Run Parameters").click()
    dialog.locator('input[name="element_query"]').fill(conf["query"])
    dialog.locator('input[name="element_split_by"]').fill(conf["split_by"])
    increment = dialog.locator('[id="number-input:element_chunk_size:inc"]')  # names the field it controls
    dialog.locator(f'[id="{increment.get_attribute("aria-controls")}"]').fill(str(conf["chunk_size"]))
    for param in ("method", "extract_mode"):  # enum Params: a select each
        chosen = dialog.locator(f'input[name="element_{param}"]')
        field = dialog.locator("div").filter(has=page.locator(f'input[name="element_{param}"]')).filter(
            has=page.get_by_role("combobox")).last  # the innermost box with the select and its value
        field.get_by_role("combobox").click()
        page.get_by_role("option", name=conf[param], exact=True).click()
        expect(chosen).to_have_value(conf[param])
    dialog.locator('input[name="element_target_path"]').fill(conf["target_path"])


@pytest.mark.timeout(900)
def test_a_run_triggered_from_the_params_form_shows_per_chunk_the_method_that_failed_and_the_one_that_delivered(
        airflow_deployment, kerberized_hadoop, shots, tmp_path):
    """Params form -> trigger -> the run succeeds although chunk 3's distcp job was killed: the
    grid marks distcp failed, the run's task instances show distcp failed and hdfs put delivered
    for that chunk only, and every row is published on cluster2."""
    deployment = airflow_deployment
    run_id = f"ui_fallback_{uuid.uuid4().hex[:8]}"
    target = f"hdfs://cluster2/ui/{run_id}"
    conf = {"query": "SELECT * FROM default.events", "split_by": "id", "chunk_size": 5000, "method": "distcp",
            "extract_mode": "client", "target_path": target}
    deployment.wait_for_dag(DAG_ID)
    with chromium_page() as page, DistcpKiller(deployment, run_id, KILLED_CHUNK) as killer:
        sign_in(page, f"{deployment.api_url}/dags/{DAG_ID}", deployment.username, deployment.password)
        page.get_by_test_id("trigger-dag-button").first.click()
        fill_params_form(page, run_id, conf)
        page.set_viewport_size({"width": 1400, "height": 1200})  # the whole dialog, Params filled in
        page.get_by_role("dialog").hover()
        page.mouse.wheel(0, -2000)  # back to its title
        expect(page.get_by_role("dialog").get_by_text(f"Trigger Dag - {DAG_ID}")).to_be_in_viewport()
        page.screenshot(path=shots / "trigger-form.png")
        page.set_viewport_size({"width": 1400, "height": 900})
        page.get_by_role("dialog").get_by_test_id("trigger-dag-submit").click()
        expect(page.get_by_role("dialog")).to_be_hidden()

        run = deployment.wait_for_run(DAG_ID, run_id, timeout=600)
        assert {k: run["conf"].get(k) for k in conf} == conf  # what the form sent
        states = {(ti["task_id"], ti["map_index"]): ti["state"]
                  for ti in deployment.task_instances(DAG_ID, run_id)}
        assert run["state"] == "success", (states, deployment.log_tail("scheduler"))
        assert killer.killed, "no distcp job of chunk 3 was seen"
        chain = {method: [states[(f"events.deliver.{method}", chunk)] for chunk in range(CHUNKS)]
                 for method in ("distcp", "hdfs_put", "delivered")}
        assert chain == {"distcp": ["success", "success", "success", "failed"],
                         "hdfs_put": ["skipped", "skipped", "skipped", "success"],
                         "delivered": ["success"] * CHUNKS}

        run_page = f"{deployment.api_url}/dags/{DAG_ID}/runs/{run_id}"
        page.goto(run_page)
        expect(page.get_by_test_id("header-card").get_by_test_id("state-badge")).to_have_text("Success")
        page.get_by_test_id("expand-all-button").click()
        page.get_by_test_id(f"grid-{run_id}-events.deliver.distcp").click()  # the run's cell of distcp
        panel = page.locator("#details-panel")
        rows = panel.locator("tbody tr")
        expect(rows).to_have_count(CHUNKS)  # its mapped instances, one per chunk
        expect(rows.filter(has_text="`id` >= 15000")).to_contain_text("Failed")
        expect(rows.filter(has_text="Success")).to_have_count(CHUNKS - 1)
        page.screenshot(path=shots / "grid.png")

        page.goto(f"{run_page}?sort=map_index")
        panel.get_by_test_id("add-filter-button").click()
        page.get_by_role("menuitem", name="Task ID").click()
        toggle = panel.get_by_test_id("advanced-search-toggle")  # match anywhere: a pattern, not a prefix
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        panel.locator("div").filter(has=page.get_by_test_id("advanced-search-toggle")).filter(
            has=page.locator("input")).last.locator("input").fill("distcp|hdfs_put")
        rows = panel.locator("tbody tr")
        expect(rows).to_have_count(2 * CHUNKS)
        shown = {}
        for row in rows.all():
            cells = [cell.inner_text().strip() for cell in row.locator("td").all()]
            shown.setdefault(cells[1].rsplit(".", 1)[1], []).append((cells[2], cells[3]))
        last = "`id` >= 15000"  # chunk 3: the keys above the last boundary
        assert (last, "Failed") in shown["distcp"] and (last, "Success") in shown["hdfs_put"]
        assert sorted(state for _, state in shown["distcp"]) == ["Failed", "Success", "Success", "Success"]
        assert sorted(state for _, state in shown["hdfs_put"]) == ["Skipped", "Skipped", "Skipped", "Success"]
        page.set_viewport_size({"width": 1400, "height": 1050})  # all eight rows
        page.screenshot(path=shots / "run-task-instances.png")

    hidden = (".", "_")
    [partition] = [path for path in hdfs_get(kerberized_hadoop, target, tmp_path).iterdir()
                   if not path.name.startswith(hidden)]
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in partition.glob("*.parquet")
               if not path.name.startswith(hidden)) == EVENTS_ROWS


def test_add_connection_offers_the_impala_transfer_type_with_its_own_fields(airflow_deployment, shots):
    """The provider's connection type is in the Add Connection form, with the relabelled and
    placeholder standard fields and every extra field of its provider info, under its label."""
    [impala] = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "impala_transfer"]
    deployment = airflow_deployment
    with chromium_page(viewport={"width": 1400, "height": 1250}) as page:
        sign_in(page, f"{deployment.api_url}/connections", deployment.username, deployment.password)
        page.get_by_role("button", name="Add Connection").click()
        dialog = page.get_by_role("dialog")
        dialog.locator('input[name="connection_id"]').fill("impala_ui_check")
        dialog.get_by_role("combobox").fill("impala")
        page.get_by_role("option", name=impala["hook-name"], exact=True).click()

        behaviour = impala["ui-field-behaviour"]
        for label in behaviour["relabeling"].values():  # schema -> "Database"
            expect(dialog.get_by_text(label, exact=True)).to_be_visible()
        for placeholder in behaviour["placeholders"].values():
            expect(dialog.get_by_placeholder(placeholder, exact=True)).to_be_visible()

        dialog.get_by_role("button", name="Extra Fields", exact=True).click()
        for name, field in impala["conn-fields"].items():
            expect(dialog.get_by_text(field["label"], exact=True)).to_be_visible()
            if field.get("description"):
                expect(dialog.get_by_text(field["description"], exact=True)).to_be_visible()
        page.screenshot(path=shots / "add-connection.png")
