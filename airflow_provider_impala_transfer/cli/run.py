"""The CLI's modes on a validated :class:`Job`: the transfer itself, ``--dry-run`` and
``--test-connection``. Each step calls the same core function the DAG's task calls:

    plan_chunks -> extract_chunk (one connection per worker) -> deliver_with_fallback(deliver_chunk)
    -> count_mismatch (source == files == delivered) -> publish_deliveries -> publish_table
    -> commit_kinds, or roll_back_kinds if anything after the swap failed
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import IO

from airflow_provider_impala_transfer.cli.exit_codes import EXIT_FAILED, EXIT_OK
from airflow_provider_impala_transfer.cli.job import Job
from airflow_provider_impala_transfer.cli.report import ChunkOutcome, Reporter, print_summary
from airflow_provider_impala_transfer.cli.temp_dir import open_temp_dir, resolved
from airflow_provider_impala_transfer.core.common.connection import run_server_call
from airflow_provider_impala_transfer.core.common.kerberos import TicketCache, in_environ, ticket_summary
from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.errors import ImpalaTransferError
from airflow_provider_impala_transfer.core.export import drop_export, export_manifests, run_export
from airflow_provider_impala_transfer.core.staging import fetch_local
from airflow_provider_impala_transfer.core.extract.arrow_types import arrow_schema
from airflow_provider_impala_transfer.core.extract.extract import Progress, describe_query, extract_chunk, plan_chunks
from airflow_provider_impala_transfer.core.extract.writer import part_name
from airflow_provider_impala_transfer.core.reconcile import count_mismatch, count_rows
from airflow_provider_impala_transfer.core.table.ddl import add_partition_sql, count_sql, create_table_sql, refresh_sql
from airflow_provider_impala_transfer.core.table.publish import publish_table, refresh_table
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import Attempt, deliver_chunk, deliver_with_fallback
from airflow_provider_impala_transfer.core.transfer.layout import STAGING_DIR
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import HdfsShell
from airflow_provider_impala_transfer.core.transfer.methods import TransferMethod
from airflow_provider_impala_transfer.core.transfer.publish import commit_kinds, publish_deliveries, roll_back_kinds
from airflow_provider_impala_transfer.core.transfer.records import DeliveryRecord, PublishResult
from airflow_provider_impala_transfer.core.transfer.targets import DESTINATION_OF

# What a run may fail with and still end with its summary: the provider's errors, and the OS's
# (a full disk, a vanished directory).
RUN_ERRORS = (ImpalaTransferError, OSError)


class _ReportedProgress(Progress):
    """Extract progress into the reporter instead of log lines."""

    def __init__(self, index: int, reporter: Reporter):
        super().__init__(label=f"chunk {index}", every=0.25)
        self.index, self.reporter = index, reporter

    def update(self, rows: int, written: int, *, final: bool = False) -> None:
        if final:
            self.reporter.extracted(self.index, rows, written)
        else:
            self.reporter.extracting(self.index, rows, written)


@contextmanager
def own_ticket(job: Job) -> Iterator[None]:
    """With --principal/--keytab, the whole run (the Impala session, hdfs, distcp, WebHDFS) acts
    as that principal through a private ticket cache, removed at the end; else nothing changes."""
    if job.login is None:
        yield
        return
    with TicketCache(job.login) as cache, in_environ(cache):
        yield


def run_job(job: Job, reporter: Reporter, out: IO[str]) -> int:
    for note in job.notes:
        reporter.line(note)
    exported: dict[int, Manifest] = {}
    if job.export is not None:  # server mode: the source engine writes the files, then they are chunks
        exported = {m.chunks[0].index: m for m in _export(job, reporter)}
        chunks = [m.chunks[0] for m in exported.values()]
    else:
        chunks = plan_chunks(job.connector, job.spec)
    total = count_rows(job.connector, job.spec.query)
    # once the source answered: a refusal leaves nothing behind
    job.work_dir = private_dir(job.work_dir, default=job.default_temp_dir)
    reporter.line(f"run {job.run.run_id}: {job.spec.query.strip()[:200]}")
    reporter.line(f"target {job.target_description}; methods {' -> '.join(job.chain)}")
    outcomes = {c.index: ChunkOutcome(c.index, c.description) for c in chunks}
    manifests: dict[int, Manifest] = {}
    records: dict[int, DeliveryRecord] = {}
    # One runner per chunk, made up front, so Ctrl-C stops chunks still extracting as well.
    runners = {c.index: job.targets.runner(log=reporter.detail) for c in chunks}
    reporter.start(chunks, total)
    pool = ThreadPoolExecutor(max_workers=job.settings.max_workers, thread_name_prefix="chunk")
    interrupted = False
    try:
        futures = {pool.submit(_chunk_worker, job, chunk, reporter, runners[chunk.index], exported.get(chunk.index)): chunk
                   for chunk in chunks}
        for future in as_completed(futures):
            chunk = futures[future]
            outcome = outcomes[chunk.index]
            try:
                manifest, record, attempts = future.result()
            except RUN_ERRORS as exc:
                outcome.error = first_line(exc)
                reporter.chunk_failed(chunk.index, outcome.error)
                continue
            manifests[chunk.index] = manifest
            outcome.rows, outcome.files, outcome.bytes = manifest.rows, len(manifest.files), manifest.bytes
            outcome.failed = [f"{a.method}: {a.error}" for a in attempts if not a.delivered]
            if record is None:
                outcome.error = "no method delivered it"
                reporter.chunk_failed(chunk.index, "every method failed: " + "; ".join(outcome.failed))
                continue
            records[chunk.index] = record
            outcome.method = record.method
            outcome.checksum = f"{record.checks} ok"
    except KeyboardInterrupt:
        interrupted = True
        for runner in runners.values():  # stop hdfs/hadoop/scp and what they started, start no other
            runner.stop()
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
        reporter.stop()
    lines, code = _finish(job, chunks, manifests, records, total, reporter)
    print_summary(out, [outcomes[c.index] for c in chunks], lines)
    return code


def _export(job: Job, reporter: Reporter) -> list[Manifest]:
    """Server mode: CREATE TABLE AS SELECT on the source cluster, then the written files' manifests."""
    assert job.export is not None and job.source_webhdfs is not None
    reporter.line(f"exporting on {job.connector.address} into {job.export.location}")
    run_export(job.connector, job.export, job.source_webhdfs, log=reporter.detail)
    shell = HdfsShell(hdfs_bin=job.targets.hdfs_bin, runner=job.targets.runner(log=reporter.detail))
    return export_manifests(job.connector, job.spec, job.export, job.source_webhdfs, shell, log=reporter.detail)


def _chunk_worker(job: Job, chunk: Chunk, reporter: Reporter, runner: CommandRunner, exported: Manifest | None = None):
    """Extract one chunk (or take the server's export of it), then walk the fallback chain until a
    method delivers it. Methods that copy local files get verified local copies of exported files."""
    if exported is None:
        manifest = extract_chunk(job.connector, job.spec, chunk, job.work_dir,
                                 progress=_ReportedProgress(chunk.index, reporter))
    else:
        manifest = exported
        reporter.extracted(chunk.index, manifest.rows, manifest.bytes)
    local: list[Manifest] = []

    def files_for(method: TransferMethod) -> Manifest:
        if not method.needs_local_copies(manifest.files):
            return manifest
        if not local:
            shell = HdfsShell(hdfs_bin=job.targets.hdfs_bin, runner=runner)
            local.append(fetch_local(manifest, shell, os.path.join(job.work_dir, f"chunk-{chunk.index:05d}")))
        return local[0]

    def build(name: str) -> Callable[[], TransferMethod]:
        def make():
            reporter.trying(chunk.index, name)
            return job.targets.method(name, runner, log=reporter.detail)
        return make

    def deliver(method, overwrite):
        # Staging is this run's own directory: replacing what an earlier attempt left is safe.
        return deliver_chunk(method, files_for(method), job.run, overwrite=True,
                             verify_mode=job.settings.verify, log=reporter.detail)

    def report(attempt: Attempt) -> None:
        if attempt.delivered:
            reporter.delivered(chunk.index, attempt.method)
        else:
            reporter.method_failed(chunk.index, attempt.method, attempt.detail or attempt.error or "")

    record, attempts = deliver_with_fallback([(name, build(name)) for name in job.chain], deliver,
                                             label=f"chunk {chunk.index}", on_attempt=report)
    return manifest, record, attempts


def _finish(job: Job, chunks: list[Chunk], manifests: dict[int, Manifest], records: dict[int, DeliveryRecord],
            total: int, reporter: Reporter) -> tuple[list[str], int]:
    missing = [c.index for c in chunks if c.index not in records]
    if missing:
        return [f"FAILED: chunk(s) {', '.join(map(str, missing))} not delivered; nothing was published "
                f"(delivered chunks wait in {STAGING_DIR}/ at the target; local files kept in {job.work_dir})"], EXIT_FAILED
    manifest = Manifest.merge(manifests[c.index] for c in chunks)
    counts = {"source": total, "files": manifest.rows, "delivered": sum(r.rows for r in records.values())}
    problem = count_mismatch(counts)  # checked before anything is replaced
    if problem:
        return [f"counts: {_counts_text(counts)}", f"FAILED: {problem}; nothing was published"], EXIT_FAILED
    runner = job.targets.runner(log=reporter.detail)
    destination_of = lambda kind: job.targets.destination(kind, runner)  # noqa: E731
    try:
        published = publish_deliveries(list(records.values()), job.run, destination_of,
                                       allow_split=job.settings.allow_split_publish, lock=job.lock,
                                       log=reporter.detail)
    except RUN_ERRORS as exc:
        return [f"FAILED: publish: {first_line(exc)} (delivered chunks wait in {STAGING_DIR}/ at the target; "
                f"local files kept in {job.work_dir})"], EXIT_FAILED
    lines = [f"published {', '.join(published.published.values())}: {published.files} files, "
             f"{published.bytes:,} bytes"]
    if len(published.published) > 1:
        lines.append(f"note: chunks were published to {len(published.published)} places (--allow-split-publish): "
                     + "; ".join(f"{kind} {where}" for kind, where in published.published.items()))
    counts["published"] = published.rows
    failure = None
    table = None
    try:
        if job.table is not None and job.table_connector is not None:
            table = job.table_at(published.final_dir)
            result = publish_table(job.table_connector, table, manifest.schema, published.rows)
            counts["target_table"] = result.rows
            lines.append(f"table {result.table} shows {result.rows:,} rows at {result.location}")
        failure = count_mismatch(counts)
    except ImpalaTransferError as exc:
        failure = f"target table {job.target_table}: {first_line(exc)}"
    except BaseException:
        _roll_back(job, published, destination_of, table, reporter)
        raise
    lines += [f"note: {note}" for note in job.notes if note.startswith("target table")]
    lines.append(f"counts: {_counts_text(counts)}")
    if failure:
        lines.append(f"FAILED: {failure}")
        lines += _roll_back(job, published, destination_of, table, reporter)
        return lines, EXIT_FAILED
    try:
        commit_kinds(list(published.published), job.run, destination_of, lock=job.lock, log=reporter.detail)
    except RUN_ERRORS as exc:  # the new data is in place and checked; only the cleanup failed
        lines.append(f"note: removing the replaced files failed: {first_line(exc)}")
    if job.export is not None:
        try:
            drop_export(job.connector, job.export, job.source_webhdfs, log=reporter.detail)
        except RUN_ERRORS as exc:
            lines.append(f"note: dropping the export failed: {first_line(exc)} (drop {job.export.table} and "
                         f"remove {job.export.location} by hand)")
    if not job.settings.keep_temp:
        shutil.rmtree(job.work_dir, ignore_errors=True)
    return lines, EXIT_OK


def _roll_back(job: Job, published: PublishResult, destination_of, table, reporter: Reporter) -> list[str]:
    """A check after publishing failed: put back what the run replaced (see core.transfer.publish)."""
    try:
        restored = roll_back_kinds(list(published.published), job.run, destination_of, lock=job.lock,
                                   log=reporter.detail)
        if table is not None and job.table_connector is not None:
            refresh_table(job.table_connector, table)
    except RUN_ERRORS as exc:
        return [f"FAILED: restoring the previous data: {first_line(exc)} (see {', '.join(published.published.values())})"]
    what = "its previous files" if published.replaced else "nothing (it held nothing before)"
    return [f"restored {', '.join(published.published[k] for k in restored)} to {what}; the run's files wait in "
            f"{STAGING_DIR}/ for a retry"] if restored else []


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


def private_dir(path: str, *, default: bool = False) -> str:
    """A new 0700 directory named after ``path`` (``<path>-XXXXXXXX``) for this run's local files:
    another local user can neither read the data nor plant files or links where it is written,
    and two runs never share one. The temp dir ``dirname(path)`` is checked again here, level by
    level on open descriptors, and the directory is made in the checked descriptor
    (:mod:`cli.temp_dir`: only the user or root may rename entries there, so the path keeps
    naming it; ``default``: the stricter rule of the default temp dir)."""
    parent, prefix = os.path.split(resolved(path))
    fd = open_temp_dir(parent, default=default)
    try:
        for _ in range(100):
            name = f"{prefix}-{secrets.token_hex(4)}"
            try:
                os.mkdir(name, 0o700, dir_fd=fd)  # fails on any existing name, link or not
            except FileExistsError:
                continue
            return os.path.join(parent, name)
        raise FileExistsError(f"no free name {prefix}-XXXXXXXX in {parent}")
    finally:
        os.close(fd)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --dry-run ------------------------------------------------------------------------------------

def dry_run(job: Job, out: IO[str]) -> int:
    """The chunk plan and every command line, as the run would execute them; nothing is written."""
    write = lambda text="": out.write(text + "\n")  # noqa: E731
    for note in job.notes:
        write(f"note: {note}")
    chunks = plan_chunks(job.connector, job.spec)
    write(f"run {job.run.run_id}: {len(chunks)} chunk(s), {job.settings.max_workers} worker(s), "
          f"one connection each")
    write(f"query: {' '.join(job.spec.query.split())}")
    for chunk in chunks:
        write(f"  chunk {chunk.index}: {chunk.description}")
    write(f"local files: {job.work_dir}-XXXXXXXX/chunk-CCCCC-part-PPPPP{job.spec.file_format.extension} "
          f"(a new part every {job.spec.chunk_size:,} rows)")
    write(f"methods, tried in order per chunk: {' -> '.join(job.chain)}")
    runner = CommandRunner()
    for chunk in chunks:
        name = part_name(chunk.index, 0, job.spec.file_format)
        files = [FileEntry(path=f"file://{job.work_dir}-XXXXXXXX/{name}", bytes=0, sha256="", chunk=chunk.index, part=0)]
        write(f"chunk {chunk.index} ({name}, ...):")
        for method_name in job.chain:
            try:
                lines = job.targets.method(method_name, runner).describe(files, job.run)
            except ImpalaTransferError as exc:
                lines = [f"(not configured: {exc})"]
            write(f"  {method_name}:")
            for line in lines:
                write(f"    {line}")
    write("then, once every chunk is verified, publish (per destination that received files):")
    for kind in dict.fromkeys(DESTINATION_OF[m] for m in job.chain):
        try:
            destination = job.targets.destination(kind, runner)
        except ImpalaTransferError:
            continue
        layout = job.run.at(destination.root)
        write(f"  {kind}: rename {destination.describe(layout.staging_dir)} -> {destination.describe(layout.final_dir)}")
    if job.table is not None:
        schema = arrow_schema(describe_query(job.connector, job.spec.query), job.spec.timestamp_unit)
        table = job.table_at(job.run.at(job.table.location).final_dir)
        write(f"table on {job.table_connector.address}:")
        statements = [create_table_sql(table, schema)]
        statements += [add_partition_sql(table)] if table.partition else []
        statements += [*refresh_sql(table), count_sql(table)]
        for sql in statements:
            write("  " + " ".join(sql.split()))
    write("dry run: nothing was extracted, copied or changed")
    return EXIT_OK


# --test-connection ------------------------------------------------------------------------------

def test_connection(job: Job, out: IO[str]) -> int:
    """Reach the source, every configured target and the target Impala; exit 1 if any fails."""
    checks: list[tuple[str, Callable[[], str]]] = [("source", job.connector.ping)]
    runner = job.targets.runner(timeout=60)
    for kind in dict.fromkeys(DESTINATION_OF[m] for m in job.chain):
        try:
            destination = job.targets.destination(kind, runner)
        except ImpalaTransferError:  # a later fallback left unconfigured: nothing to reach
            out.write(f"target ({kind}): not configured, skipped\n")
            continue
        checks.append((f"target ({kind})", lambda d=destination: _probe_destination(d)))
    if job.table_connector is not None:
        checks.append(("target impala", job.table_connector.ping))
    if job.login is not None or "GSSAPI" in {job.connector.auth_mechanism,
                                             getattr(job.table_connector, "auth_mechanism", None)}:
        out.write(f"kerberos: {ticket_summary()}\n")  # who this run is, before what it reaches
    failures = 0
    for name, check in checks:
        try:
            out.write(f"{name}: ok, {check()}\n")
        except RUN_ERRORS as exc:
            failures += 1
            out.write(f"{name}: FAILED, {first_line(exc)}\n")
    return EXIT_FAILED if failures else EXIT_OK


def _probe_destination(destination) -> str:
    exists = destination.is_dir(destination.root)
    return f"{destination.describe(destination.root)} {'exists' if exists else 'is reachable (will be created)'}"
