"""Real Apache Hadoop 3.5.0 YARN on this machine: DistCp as a real MapReduce job in YARN containers.

No distribution, no Docker: ``tests/support/hadoop/fetch.sh`` puts what YARN adds to ``.hadoop/lib``
into ``.hadoop/yarn`` (``yarn-pom.xml``: ResourceManager, NodeManager, MRAppMaster, JobHistory server,
job submission to YARN, ``yarn application``; 66 jars, 42 MB). :class:`LocalYarn` runs, for a started
:class:`~tests.support.local_hdfs.LocalHadoop`, three JVMs (each its own process group, ``-Xmx256m``,
stopped by PID) on free 127.0.0.1 ports: a ResourceManager (CapacityScheduler, one queue ``default``),
a NodeManager (DefaultContainerExecutor: containers run as this OS user; 3072 MB / 4 vcores, and the
scheduler counts vcores too, so at most an AM and 3 maps at a time on 2 cores; 256 MB containers with
``-Xmx200m``; pmem/vmem checks off; a full disk does not make it unhealthy) and the MapReduce JobHistory
server. Staging (``hdfs://cluster1/tmp/hadoop-yarn/staging``) and the job history
(``hdfs://cluster1/mr-history/{tmp,done}``) are on cluster1; daemon logs in ``<workdir>/logs``,
container logs in ``<workdir>/nm-logs/<app>/<container>/{syslog,stderr,stdout}`` (no aggregation).

Two client configurations, the same executables. ``LocalHadoop.conf_dir`` keeps the LOCAL job runner
(most of the suite's distcp runs: ~3.5 s each). :attr:`LocalYarn.conf_dir` is a copy of its
core-site/hdfs-site/log4j (both clusters by nameservice) plus yarn-site.xml, mapred-site.xml
(``mapreduce.framework.name=yarn``, the RM and JobHistory addresses, container sizes) and
capacity-scheduler.xml; the daemons read the same directory. So::

    HADOOP_CONF_DIR=<yarn.conf_dir> <hadoop.bin_dir>/hadoop distcp ...     # yarn.distcp(...)
    HADOOP_CONF_DIR=<yarn.conf_dir> <hadoop.bin_dir>/yarn application -kill <app id>

``bin/hadoop`` appends ``.hadoop/yarn`` to its class path only when its conf directory holds a
yarn-site.xml (a shell test), after ``.hadoop/lib``, so the class archive still applies; ``bin/hdfs``
never takes it; ``bin/yarn`` (``application``, ``node``, ``version``, ``classpath``) always.

Usage (on a LocalHadoop started with ``python -m tests.support.local_hdfs start``)::

    python -m tests.support.local_yarn start --workdir .demo/yarn --hadoop-workdir .demo/hadoop
    python -m tests.support.local_yarn status|stop --workdir .demo/yarn

Verified with Hadoop 3.5.0 and Java 17 on the 2-core machine (tests/test_local_yarn.py):

(a) ``hadoop distcp -update -pb -f hdfs://cluster1/listing hdfs://cluster2/dst`` with the YARN
    configuration prints on stderr ``INFO mapreduce.JobSubmitter: number of splits:2``, ``INFO
    impl.YarnClientImpl: Submitted application application_<ts>_0001``, ``INFO mapreduce.Job: The url
    to track the job: http://localhost:<rm web>/proxy/application_<ts>_0001/``, ``INFO tools.DistCp:
    DistCp job-id: job_<ts>_0001``, ``INFO mapreduce.Job: Running job: job_<ts>_0001``, ``... running in
    uber mode : false``, ``map 0% reduce 0%``, ``map 100% reduce 0%``, ``Job job_<ts>_0001 completed
    successfully``, ``Counters: 37`` and the groups, ``DistCp Counters`` last (``Bandwidth in Bytes``,
    ``Bytes Copied``, ``Bytes Expected``, ``Files Copied=2``); exit 0. One map container per file.
    The RM's record (``/ws/v1/cluster/apps/{id}``): ``state`` FINISHED, ``finalStatus`` SUCCEEDED,
    ``progress`` 100.0, ``diagnostics`` "", ``name`` distcp, ``applicationType`` MAPREDUCE, ``queue``
    root.default, ``startedTime``/``launchTime``/``finishedTime`` in ms.
(b) ``-async`` returns once the job is submitted (~4.5 s) after the same lines up to ``DistCp job-id:
    job_<ts>_<n>``, without ``Running job`` (exit 0).
(c) ``yarn application -kill <app>`` prints ``Killing application <app>`` on stdout (exit 0, ~1-2 s,
    one JVM); the RM shows ``state`` KILLED, ``finalStatus`` KILLED, ``progress`` 100.0, ``diagnostics``
    ``Application <app> was killed by user root at 127.0.0.1`` at once (KILLED seen 0.05 s after the
    CLI returned); ``yarn application -status`` then prints ``\tState : KILLED`` and ``\tFinal-State :
    KILLED``. The JobHistory server does not know a killed job (404 ``job, job_..., is not found``).
(d) ``-Dmapreduce.job.queuename=nope``: exit 25 in ~3.5 s, stderr ``ERROR tools.DistCp: Exception
    encountered`` then (verbatim, the RM's reason twice, the first time cut short -- sic)
    ``java.io.IOException: org.apache.hadoop.yarn.exceptions.YarnException: Failed to submit
    application_<ts>_0002 to YARN : Application application_<ts>_0002 submitted by user rootApplication
    application_<ts>_0002 submitted by user root to unknown queue: nope``; the RM keeps the application
    FAILED/FAILED, ``queue`` nope, progress 0.0, that reason as ``diagnostics``.
(e) The JobHistory server's ``/ws/v1/history/mapreduce/jobs/{job}/counters`` names the group printed
    as "DistCp Counters" ``org.apache.hadoop.tools.mapred.CopyMapper$Counter`` with
    ``BANDWIDTH_IN_BYTES``, ``BYTESCOPIED``, ``BYTESEXPECTED``, ``COPY`` (others:
    ``org.apache.hadoop.mapreduce.FileSystemCounter``, ``...JobCounter``, ``...TaskCounter``,
    ``...lib.input.FileInputFormatCounter``, ``...lib.output.FileOutputFormatCounter``).
(f) A map-only job still needs the NodeManager's ``mapreduce_shuffle`` aux-service: the AM puts the
    shuffle token into every map's launch context, and without ShuffleHandler the NodeManager refuses
    the container (``InvalidAuxServiceException: The auxService:mapreduce_shuffle does not exist``);
    the job fails (``Task failed task_..._m_000000``, exit 25). ``shuffle=False`` reproduces it.
(g) What it took: ``hadoop-yarn-server-timelineservice`` (the RM's web app binds a class of it even
    with the timeline service off: ``ClassNotFoundException: ...TimelineCollectorManager`` otherwise);
    ``/mr-history`` made 0755 by the superuser (the JobHistory server creates a missing parent 0770:
    the AM fails ``Permission denied: user=root, access=EXECUTE, inode="/mr-history"``); the web apps'
    ``webapps/{cluster,node,jobhistory,static}`` are in hadoop-yarn-common (no minicluster);
    ``mapreduce.job.end-notification.max.attempts`` is final in mapred-default (cannot be set).
(h) Costs (2 cores, another test run loading the machine, load average 3-5):

    * start of RM + NM + JHS until the RM is STARTED with the node RUNNING and the JHS answers: 9.9-13.9 s;
      stop 5.5 s (the NodeManager kills its containers in ~3 s, then would wait 10 s more for its log
      handler: SIGKILL after ``NM_STOP_SECONDS``; a clean NM stop measured 14.8 s).
    * RSS after start / after 4 jobs: RM 196 / 233 MiB, NM 148 / 188 MiB, JHS 143 / 152 MiB; an AM or map
      container ~160 MiB.
    * a 2-file 5 MB distcp: 22-25 s wall on YARN vs 3.5-4.3 s on the local runner. From the RM's record:
      submit -> AM container launched 0.0-1.2 s, submit -> first map started (JobHistory task
      ``startTime``) 8.7-11 s, submit -> finished 17-20 s (AM JVM start ~3 s, AM init ~6 s on 2 cores,
      map JVMs ~2 s, the job history copied to the JHS dirs ~1.5 s).
    * ``yarn application -kill``: 1.0-2.0 s, KILLED in the RM at once.

Kerberos. With a Kerberized LocalHadoop (``kdc=``), the daemons log in as ``rm``, ``nm`` and
``jhs/localhost@<first realm>`` from ``<workdir>/yarn.keytab`` (which also holds cluster1's
``HTTP/localhost``, exported without new keys); ``yarn.resourcemanager.principal`` is ``rm/localhost``
in both client configurations, so DistCp's delegation tokens of BOTH clusters (cluster2 in the other
realm) name ``renewer=rm``, the RM's short name, and the RM renews them. ``hadoop.http.filter.initializers``
= AuthenticationFilterInitializer puts the RM, NodeManager and JobHistory web servers behind SPNEGO
(401 without; ``/jmx`` open) -- without it the RM's REST API stayed open although its Kerberos handler
was configured; :meth:`LocalYarn.get` (``app``, ``apps``, ``job_counters``, readiness) asks with SPNEGO
as ``hdfs@<realm>`` in a child process (~0.3 s). Verified: ``HADOOP_CONF_DIR=<yarn conf> hadoop distcp
-pb hdfs://cluster1/... hdfs://cluster2/...`` with a user's ticket (``KRB5CCNAME``) prints ``Executing
with tokens: [Kind: HDFS_DELEGATION_TOKEN, Service: ha-hdfs:cluster1, Ident: (token for etluser:
HDFS_DELEGATION_TOKEN owner=etluser@IMPALA-TRANSFER.TEST, renewer=rm, ...), Kind: ..., Service:
ha-hdfs:cluster2, ...]``, runs as that user (RM ``user``, the copy's owner) and succeeds; YARN start on
the Kerberized pair ~14 s, a job ~21 s. Containers get ``-Djava.security.krb5.conf``; they
authenticate with the job's tokens only. Not done: a ``yarn application -kill`` / JobHistory check
under Kerberos, and renewal beyond a ticket's lifetime (the daemons have autorenewal on).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.local_hdfs import (
    DAEMON_JVM_OPTIONS,
    HADOOP_DIST,
    RM_SERVICE,
    SPNEGO_PUTS,
    SUPERUSER,
    LocalHadoop,
    _port_open,
    _write_if_changed,
    client_classpath,
    ensure_hadoop,
    java_binary,
    site_xml,
    yarn_jars,
)
from tests.support.processes import alive, free_port, stop_process_group, tail

RESOURCEMANAGER_CLASS = "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager"
NODEMANAGER_CLASS = "org.apache.hadoop.yarn.server.nodemanager.NodeManager"
JOBHISTORY_CLASS = "org.apache.hadoop.mapreduce.v2.hs.JobHistoryServer"
ROLES = {"resourcemanager": RESOURCEMANAGER_CLASS, "nodemanager": NODEMANAGER_CLASS,
         "historyserver": JOBHISTORY_CLASS}
STATE_FILE = "yarn.json"
STAGING_ROOT = "/tmp/hadoop-yarn/staging"  # on cluster1, 1777: each user's jobs stage in <root>/<user>
NM_STOP_SECONDS = 5.0  # SIGTERM, then SIGKILL: see LocalYarn.stop
PORT_NAMES = ("rm", "rm_scheduler", "rm_tracker", "rm_admin", "rm_web", "nm", "nm_localizer", "nm_web",
              "shuffle", "jhs", "jhs_web", "jhs_admin")

# The MapReduce containers (ApplicationMaster, maps): as small and quick to start as the daemons.
CONTAINER_JVM_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -Djava.net.preferIPv4Stack=true"

DAEMON_LOG4J = """\
# YARN daemon logs (reload4j): INFO, the chatty loggers at WARN.
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{yy/MM/dd HH:mm:ss,SSS} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.metrics2=WARN
log4j.logger.org.eclipse.jetty=WARN
log4j.logger.org.apache.hadoop.yarn.server.resourcemanager.RMAuditLogger=WARN
log4j.logger.org.apache.hadoop.yarn.server.nodemanager.NMAuditLogger=WARN
log4j.logger.org.apache.hadoop.ipc.Server=WARN
"""


CLIENT_LOG4J_YARN = """\
log4j.logger.org.apache.hadoop.yarn.client.api.impl.YarnClientImpl=${hadoop.tools.log.level}
log4j.logger.org.apache.hadoop.mapreduce.JobSubmitter=${hadoop.tools.log.level}
"""


# A GET with SPNEGO (requests-kerberos), in a child whose environment names the KDC's krb5.conf and
# a ticket cache (MIT krb5 reads both from the environment only): `python -c SPNEGO_GET url host`.
SPNEGO_GET = """\
import sys
import requests
from requests_kerberos import OPTIONAL, HTTPKerberosAuth
answer = requests.get(sys.argv[1], headers={"Accept": "application/json"}, timeout=10,
                      auth=HTTPKerberosAuth(mutual_authentication=OPTIONAL, hostname_override=sys.argv[2]))
sys.stdout.write(answer.text)
if answer.status_code != 200:
    sys.exit(f"HTTP {answer.status_code}")
"""


def _as_list(value) -> list:
    """A JSON array of the REST APIs, which may come as null or (one element) as the element itself."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _http_json(url: str, timeout: float = 5.0) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else {}


@dataclass
class LocalYarn:
    """A ResourceManager, a NodeManager and the MapReduce JobHistory server (three JVMs, each its own
    process group) for a started :class:`LocalHadoop`, and a client configuration directory
    (:attr:`conf_dir`) that sends MapReduce jobs (``hadoop distcp``) to them."""

    hadoop: LocalHadoop
    workdir: Path
    heap: str = "256m"
    nm_memory_mb: int = 3072
    nm_vcores: int = 4
    container_mb: int = 256  # the ApplicationMaster's and every map's container
    container_heap: str = "200m"
    shuffle: bool = True  # the NodeManager's mapreduce_shuffle aux-service (see the module docstring)
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        for key in PORT_NAMES:
            self.ports.setdefault(key, free_port())
        self._procs: dict[str, subprocess.Popen] = {}

    # --- addresses --------------------------------------------------------------------------------
    def _address(self, key: str) -> str:
        return f"127.0.0.1:{self.ports[key]}"

    @property
    def rm_address(self) -> str:
        return self._address("rm")

    @property
    def rm_web_url(self) -> str:
        return f"http://{self._address('rm_web')}"

    @property
    def nm_web_url(self) -> str:
        return f"http://{self._address('nm_web')}"

    @property
    def jhs_web_url(self) -> str:
        return f"http://{self._address('jhs_web')}"

    @property
    def conf_dir(self) -> Path:
        """The YARN client configuration: ``HADOOP_CONF_DIR=<this> hadoop distcp ...`` runs on YARN."""
        return self.workdir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def local_dir(self) -> Path:
        return self.workdir / "nm-local"

    @property
    def container_log_dir(self) -> Path:
        return self.workdir / "nm-logs"

    # --- configuration ----------------------------------------------------------------------------
    def application_classpath(self) -> list[str]:
        """What the ApplicationMaster and the maps load: the conf directory, .hadoop/lib, .hadoop/yarn."""
        return [str(self.conf_dir), str(HADOOP_DIST / "lib" / "*"), str(HADOOP_DIST / "yarn" / "*")]

    # --- Kerberos ---------------------------------------------------------------------------------
    @property
    def secure(self) -> bool:
        return self.hadoop.kdc is not None

    @property
    def keytab(self) -> Path:
        return self.workdir / "yarn.keytab"

    def principal(self, service: str) -> str:
        """``<service>/localhost@<the first realm>``: ``rm``, ``nm``, ``jhs`` and (SPNEGO) ``HTTP``."""
        return f"{service}/localhost@{self.hadoop.kdc.realm}"

    def _make_principals(self) -> None:
        """``rm``, ``nm`` and ``jhs/localhost`` (new or kept from an earlier start) and, for SPNEGO,
        cluster1's ``HTTP/localhost``, all exported without new keys (cluster1's keytab stays valid)."""
        if self.keytab.is_file():
            return
        for service in (RM_SERVICE, "nm", "jhs"):
            self.hadoop._add_principal(self.principal(service))
        self.hadoop.kdc.export_keytab(self.keytab, *(self.principal(s) for s in (RM_SERVICE, "nm", "jhs", "HTTP")))

    def _secure_core(self) -> dict[str, object]:
        """SPNEGO on the ResourceManager's web UI and REST API (it adds its own authentication filter
        when ``hadoop.http.authentication.type`` is ``kerberos``); ``/jmx`` stays open."""
        return {
            "hadoop.http.filter.initializers": "org.apache.hadoop.security.AuthenticationFilterInitializer",
            "hadoop.http.authentication.type": "kerberos",
            "hadoop.http.authentication.kerberos.principal": self.principal("HTTP"),
            "hadoop.http.authentication.kerberos.keytab": str(self.keytab),
            "hadoop.http.authentication.simple.anonymous.allowed": "false",
            "hadoop.http.authentication.kerberos.endpoint.whitelist": "/jmx",
            "hadoop.kerberos.keytab.login.autorenewal.enabled": "true",
        }

    def _secure_yarn(self) -> dict[str, object]:
        return {
            "yarn.resourcemanager.principal": self.principal(RM_SERVICE),
            "yarn.resourcemanager.keytab": str(self.keytab),
            "yarn.nodemanager.principal": self.principal("nm"),
            "yarn.nodemanager.keytab": str(self.keytab),
            "yarn.resourcemanager.webapp.spnego-principal": self.principal("HTTP"),
            "yarn.resourcemanager.webapp.spnego-keytab-file": str(self.keytab),
            "yarn.nodemanager.webapp.spnego-principal": self.principal("HTTP"),
            "yarn.nodemanager.webapp.spnego-keytab-file": str(self.keytab),
        }

    def _secure_mapred(self) -> dict[str, object]:
        return {
            "mapreduce.jobhistory.principal": self.principal("jhs"),
            "mapreduce.jobhistory.keytab": str(self.keytab),
            "mapreduce.jobhistory.webapp.spnego-principal": self.principal("HTTP"),
            "mapreduce.jobhistory.webapp.spnego-keytab-file": str(self.keytab),
            # Delegation tokens of both clusters for the job (DistCp asks for its source's and target's
            # anyway); the RM renews them as rm/localhost, the renewer the client names.
            "mapreduce.job.hdfs-servers": ",".join(c.uri for c in self.hadoop.clusters.values()),
        }

    def _container_opts(self) -> str:
        krb5 = f" -Djava.security.krb5.conf={self.hadoop.kdc.krb5_conf}" if self.secure else ""
        return f"-Xmx{self.container_heap} {CONTAINER_JVM_OPTIONS}{krb5}"

    # --- configuration (continued) ----------------------------------------------------------------
    def yarn_site(self) -> dict[str, object]:
        w, mb = self.workdir, self.nm_memory_mb
        return ({**self._yarn_site(w, mb), **self._secure_yarn()} if self.secure else self._yarn_site(w, mb))

    def _yarn_site(self, w: Path, mb: int) -> dict[str, object]:
        return {
            "yarn.resourcemanager.hostname": "127.0.0.1",
            "yarn.resourcemanager.address": self._address("rm"),
            "yarn.resourcemanager.scheduler.address": self._address("rm_scheduler"),
            "yarn.resourcemanager.resource-tracker.address": self._address("rm_tracker"),
            "yarn.resourcemanager.admin.address": self._address("rm_admin"),
            "yarn.resourcemanager.webapp.address": self._address("rm_web"),
            "yarn.resourcemanager.webapp.https.address": "127.0.0.1:0",
            "yarn.nodemanager.hostname": "127.0.0.1",
            "yarn.nodemanager.address": self._address("nm"),
            "yarn.nodemanager.localizer.address": self._address("nm_localizer"),
            "yarn.nodemanager.webapp.address": self._address("nm_web"),
            "yarn.nodemanager.webapp.https.address": "127.0.0.1:0",
            "yarn.nodemanager.local-dirs": str(self.local_dir),
            "yarn.nodemanager.log-dirs": str(self.container_log_dir),
            "yarn.nodemanager.container-executor.class":
                "org.apache.hadoop.yarn.server.nodemanager.DefaultContainerExecutor",
            # Small containers, so that an AM and maps fit in 2 cores: the CapacityScheduler counts
            # memory AND vcores (capacity-scheduler.xml), so at most nm_vcores containers at a time.
            "yarn.nodemanager.resource.memory-mb": mb,
            "yarn.nodemanager.resource.cpu-vcores": self.nm_vcores,
            "yarn.nodemanager.resource.detect-hardware-capabilities": "false",
            "yarn.scheduler.minimum-allocation-mb": 128,
            "yarn.scheduler.maximum-allocation-mb": mb,
            "yarn.scheduler.minimum-allocation-vcores": 1,
            "yarn.scheduler.maximum-allocation-vcores": self.nm_vcores,
            "yarn.nodemanager.pmem-check-enabled": "false",
            "yarn.nodemanager.vmem-check-enabled": "false",
            # A nearly full disk must not make the NodeManager UNHEALTHY (no containers then).
            "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "100.0",
            "yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb": 0,
            "yarn.nodemanager.disk-health-checker.min-healthy-disks": "0.0",
            # Containers find Java: JAVA_HOME is in the NodeManager's environment and whitelisted.
            "yarn.nodemanager.env-whitelist": "JAVA_HOME,HADOOP_COMMON_HOME,HADOOP_HDFS_HOME,HADOOP_CONF_DIR,"
                                              "CLASSPATH_PREPEND_DISTCACHE,HADOOP_YARN_HOME,HADOOP_HOME,PATH,"
                                              "LANG,TZ,HADOOP_MAPRED_HOME",
            # The MapReduce AM asks every NodeManager for the mapreduce_shuffle service's port, even
            # for a map-only job (see the module docstring): the NodeManager runs ShuffleHandler.
            **({"yarn.nodemanager.aux-services": "mapreduce_shuffle",
                "yarn.nodemanager.aux-services.mapreduce_shuffle.class": "org.apache.hadoop.mapred.ShuffleHandler"}
               if self.shuffle else {}),
            "yarn.application.classpath": ",".join(self.application_classpath()[:1]),
            # Quick scheduling: heartbeats every 250 ms instead of 1 s, one AM attempt (a test wants
            # the failure, not a retry), no recovery, no timeline service.
            "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms": 250,
            "yarn.resourcemanager.am.max-attempts": 1,
            "yarn.resourcemanager.recovery.enabled": "false",
            "yarn.nodemanager.recovery.enabled": "false",
            "yarn.timeline-service.enabled": "false",
            "yarn.log-aggregation-enable": "false",
            "yarn.nodemanager.log.retain-seconds": 3600,
            "yarn.resourcemanager.max-completed-applications": 1000,
            "yarn.nodemanager.sleep-delay-before-sigkill.ms": 250,
            "yarn.nodemanager.process-kill-wait.ms": 1000,
            # Clients: fail fast on a stopped RM instead of retrying for 15 minutes.
            "yarn.resourcemanager.connect.max-wait.ms": 10000,
            "yarn.resourcemanager.connect.retry-interval.ms": 500,
            "yarn.client.nodemanager-connect.max-wait-ms": 10000,
            "hadoop.tmp.dir": str(w / "tmp"),
        }

    def mapred_site(self) -> dict[str, object]:
        return {**self._mapred_site(), **self._secure_mapred()} if self.secure else self._mapred_site()

    def _mapred_site(self) -> dict[str, object]:
        c1 = self.hadoop.source.uri
        mb, opts = self.container_mb, self._container_opts()
        return {
            "mapreduce.framework.name": "yarn",
            "yarn.app.mapreduce.am.staging-dir": f"{c1}{STAGING_ROOT}",
            "mapreduce.jobhistory.intermediate-done-dir": f"{c1}/mr-history/tmp",
            "mapreduce.jobhistory.done-dir": f"{c1}/mr-history/done",
            "mapreduce.jobhistory.address": self._address("jhs"),
            "mapreduce.jobhistory.webapp.address": self._address("jhs_web"),
            "mapreduce.jobhistory.admin.address": self._address("jhs_admin"),
            "mapreduce.jobhistory.move.interval-ms": 5000,
            "mapreduce.application.classpath": ",".join(self.application_classpath()[1:]),
            "yarn.app.mapreduce.am.resource.mb": mb,
            "yarn.app.mapreduce.am.resource.cpu-vcores": 1,
            "yarn.app.mapreduce.am.command-opts": opts,
            "yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms": 250,
            "mapreduce.am.max-attempts": 1,
            "mapreduce.map.memory.mb": mb,
            "mapreduce.map.cpu.vcores": 1,
            "mapreduce.map.java.opts": opts,
            "mapreduce.reduce.memory.mb": mb,
            "mapreduce.reduce.java.opts": opts,
            "mapreduce.map.maxattempts": 1,  # a failing copy fails the job at once (tests want that)
            "mapreduce.shuffle.port": self.ports["shuffle"],
            "mapreduce.shuffle.address": "127.0.0.1",
            "mapreduce.task.io.sort.mb": 16,
            "mapreduce.client.progressmonitor.pollinterval": 200,
            "mapreduce.client.completion.pollinterval": 200,
            "yarn.app.mapreduce.client.job.retry-interval": 500,
            "yarn.app.mapreduce.client-am.ipc.max-retries": 2,
            "yarn.app.mapreduce.client-am.ipc.max-retries-on-timeouts": 2,
        }

    @staticmethod
    def capacity_scheduler() -> dict[str, object]:
        return {
            "yarn.scheduler.capacity.root.queues": "default",
            "yarn.scheduler.capacity.root.default.capacity": 100,
            "yarn.scheduler.capacity.root.default.maximum-capacity": 100,
            "yarn.scheduler.capacity.maximum-am-resource-percent": 0.5,
            "yarn.scheduler.capacity.resource-calculator":
                "org.apache.hadoop.yarn.util.resource.DominantResourceCalculator",
            # One node: no waiting for a node-local container (40 missed scheduling chances by default).
            "yarn.scheduler.capacity.node-locality-delay": -1,
        }

    def write_conf(self) -> None:
        """LocalHadoop's client core-site/hdfs-site/log4j (both clusters by name) plus YARN's files:
        one directory for the daemons and the clients, as on an edge node."""
        src = self.hadoop.conf_dir
        _write_if_changed(self.conf_dir / "hdfs-site.xml", (src / "hdfs-site.xml").read_text())
        core = (src / "core-site.xml").read_text()
        if self.secure:  # the daemons' SPNEGO settings (clients ignore them)
            core = core.replace("</configuration>\n", site_xml(self._secure_core()).split("<configuration>\n")[1])
        _write_if_changed(self.conf_dir / "core-site.xml", core)
        # The client's log4j, plus the submission's own lines at distcp's INFO ("Submitted application
        # application_...": YarnClientImpl; "number of splits", "Submitting tokens": JobSubmitter).
        log4j = (src / "log4j.properties").read_text() + CLIENT_LOG4J_YARN
        _write_if_changed(self.conf_dir / "log4j.properties", log4j)
        _write_if_changed(self.conf_dir / "yarn-site.xml", site_xml(self.yarn_site()))
        _write_if_changed(self.conf_dir / "mapred-site.xml", site_xml(self.mapred_site()))
        _write_if_changed(self.conf_dir / "capacity-scheduler.xml", site_xml(self.capacity_scheduler()))
        _write_if_changed(self.workdir / "daemon-log4j.properties", DAEMON_LOG4J)

    # --- processes --------------------------------------------------------------------------------
    def _classpath(self) -> str:
        # conf first, then .hadoop/lib (hot jars first) and .hadoop/yarn. Not .hadoop/web: its
        # webapps/static is HDFS's; YARN's web apps (and their static files) are in hadoop-yarn-common.
        return os.pathsep.join([str(self.conf_dir), *client_classpath(), *yarn_jars()])

    def _daemon_argv(self, role: str) -> list[str]:
        krb5 = [f"-Djava.security.krb5.conf={self.hadoop.kdc.krb5_conf}"] if self.secure else []
        return [java_binary(), f"-Xmx{self.heap}", "-Xms32m", *DAEMON_JVM_OPTIONS, *krb5,
                f"-Djava.io.tmpdir={self.workdir / 'tmp'}",
                f"-Dlog4j.configuration=file:{self.workdir / 'daemon-log4j.properties'}",
                f"-Dhadoop.log.dir={self.log_dir}", f"-Dyarn.log.dir={self.log_dir}",
                f"-Dhadoop.home.dir={HADOOP_DIST}", f"-Dhadoop.id.str={SUPERUSER}",
                "-cp", self._classpath(), ROLES[role]]

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HADOOP_", "JAVA_TOOL", "YARN_"))}
        env["HADOOP_USER_NAME"] = SUPERUSER
        env["HADOOP_CONF_DIR"] = str(self.conf_dir)
        env["JAVA_HOME"] = str(Path(java_binary()).parent.parent)  # what containers run: $JAVA_HOME/bin/java
        env.pop("KRB5CCNAME", None)
        return env

    def _launch(self, role: str) -> None:
        if self.running(role):
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{role}.log", "ab") as log:
            proc = subprocess.Popen(self._daemon_argv(role), cwd=self.workdir, env=self._daemon_env(),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self._procs[role] = proc
        self.pids[role] = proc.pid

    def running(self, role: str) -> bool:
        proc = self._procs.get(role)
        if proc is not None:
            return proc.poll() is None
        pid = self.pids.get(role)
        return bool(pid) and alive(pid)

    def start(self, timeout: float = 120.0, attempts: int = 3) -> LocalYarn:
        """Start the three daemons and wait until the RM is STARTED with the NodeManager RUNNING and
        the JobHistory server answers. A port taken meanwhile ("BindException"): again on fresh ports."""
        ensure_hadoop()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
                return self
            except RuntimeError:
                self.stop()
                if "BindException" not in self.log_tail(200) or attempt == attempts:
                    raise
                self.ports = {key: free_port() for key in self.ports}
                for role in ROLES:
                    (self.log_dir / f"{role}.log").unlink(missing_ok=True)
            except BaseException:
                self.stop()
                raise
        return self

    def _start_once(self, timeout: float) -> None:
        for path in (self.workdir / "tmp", self.local_dir, self.container_log_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.hadoop.write_client()  # bin/yarn, and the YARN jars on bin/hadoop's class path with this conf
        if self.secure:
            self._make_principals()
        self.write_conf()
        self.bootstrap_hdfs()
        for role in ROLES:
            self._launch(role)
        self._write_state()
        self.wait_ready(timeout)

    def bootstrap_hdfs(self) -> None:
        """``/mr-history`` on cluster1, ``0755`` and the superuser's: the JobHistory server creates its
        ``done`` (0770) and ``tmp`` (1777) beneath it, but a parent it creates itself gets 0770, and
        then the ApplicationMaster (the job's user) fails "Failed checking for the existence of history
        intermediate done directory" (Permission denied, EXECUTE on /mr-history)."""
        if self.secure:  # as hdfs@<realm> with SPNEGO; the JobHistory server is jhs/localhost, "jhs"
            self._secure_bootstrap()
            return
        self.hadoop.source.webhdfs("PUT", "/mr-history", "MKDIRS", SUPERUSER, permission="755")
        self.hadoop.source.webhdfs("PUT", "/mr-history", "SETPERMISSION", SUPERUSER, permission="755")
        self.hadoop.source.webhdfs("PUT", STAGING_ROOT, "MKDIRS", SUPERUSER, permission="1777")
        self.hadoop.source.webhdfs("PUT", STAGING_ROOT, "SETPERMISSION", SUPERUSER, permission="1777")

    def _secure_bootstrap(self, timeout: float = 60.0) -> None:
        cluster = self.hadoop.source
        base = f"http://{cluster.webhdfs_address}/webhdfs/v1/mr-history"
        staging = f"http://{cluster.webhdfs_address}/webhdfs/v1{STAGING_ROOT}"
        calls = [(f"{base}?op=MKDIRS&permission=755", cluster.kerberos.host),
                 (f"{base}?op=SETPERMISSION&permission=755", cluster.kerberos.host),
                 (f"{base}?op=SETOWNER&owner=jhs", cluster.kerberos.host),
                 # Every user's job stages under it (<root>/<user>/.staging): a root made by the first
                 # user's job would be 0755 and refuse the next user, as on a cluster nobody set up.
                 (f"{staging}?op=MKDIRS&permission=1777", cluster.kerberos.host),
                 (f"{staging}?op=SETPERMISSION&permission=1777", cluster.kerberos.host)]
        self._kinit()
        result = subprocess.run([sys.executable, "-c", SPNEGO_PUTS, json.dumps(calls)], env=self._spnego_env(),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"/mr-history on {cluster.name} (exit {result.returncode}):\n{result.stderr[-3000:]}")

    def _kinit(self) -> None:
        """A fresh ticket of the superuser (``hdfs@<realm>``) for the REST calls, at most every 10 min."""
        if time.monotonic() - getattr(self, "_kinit_at", -1e9) > 600:
            self.hadoop.kdc.kinit(self.hadoop.superuser_principal, self.hadoop.superuser_keytab,
                                  self.hadoop.superuser_ccache)
            self._kinit_at = time.monotonic()

    def _spnego_env(self) -> dict[str, str]:
        return {**os.environ, "KRB5_CONFIG": str(self.hadoop.kdc.krb5_conf),
                "KRB5CCNAME": f"FILE:{self.hadoop.superuser_ccache}"}

    def get(self, url: str, timeout: float = 15.0) -> dict:
        """GET ``url`` as JSON; with Kerberos through SPNEGO as ``hdfs@<realm>`` (a child process,
        ~0.3 s). An HTTP error raises :class:`urllib.error.HTTPError` either way."""
        if not self.secure:
            return _http_json(url)
        self._kinit()
        result = subprocess.run([sys.executable, "-c", SPNEGO_GET, url, "localhost"], env=self._spnego_env(),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if result.returncode != 0:
            status = re.search(r"HTTP (\d+)$", result.stderr.strip())
            raise urllib.error.HTTPError(url, int(status[1]) if status else 599,
                                         (result.stdout or result.stderr)[-500:], None, None)
        return json.loads(result.stdout) if result.stdout else {}

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for role in ROLES:
                if not self.running(role):
                    raise RuntimeError(f"the {role} exited; logs:\n{self.log_tail()}")
            try:
                info = self.get(f"{self.rm_web_url}/ws/v1/cluster/info")["clusterInfo"]
                nodes = self.nodes()
                running = [n for n in nodes if n.get("state") == "RUNNING"]
                last = f"RM {info.get('state')}, nodes {[n.get('state') for n in nodes]}"
                if info.get("state") == "STARTED" and running and _port_open(self.ports["rm"]):
                    self.get(f"{self.jhs_web_url}/ws/v1/history/info")
                    return
            except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:  # not up yet
                last = f"{last}; {type(exc).__name__}: {exc}"
            time.sleep(0.25)
        raise RuntimeError(f"YARN not ready within {timeout:.0f}s ({last}); logs:\n{self.log_tail()}")

    def container_pids(self) -> dict[str, int]:
        """``{container id: pid}`` from the NodeManager's pid files (``nmPrivate/<app>/<container>/*.pid``)."""
        found = {}
        for pid_file in self.local_dir.glob("nmPrivate/*/*/*.pid"):
            try:
                found[pid_file.parent.name] = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
        return found

    def _stop_containers(self, timeout: float) -> None:
        """Containers run in their own sessions (DefaultContainerExecutor: setsid), so stopping the
        NodeManager's process group does not reach them; the NodeManager kills them when it stops
        cleanly. Any left (a SIGKILLed NodeManager) are stopped by the PIDs of its pid files, if that
        PID is still that container's JVM (its command line names the container)."""
        for container, pid in self.container_pids().items():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if container in cmdline:
                stop_process_group(pid, timeout)

    def _stop_role(self, role: str, timeout: float) -> None:
        pid = self.pids.pop(role, None)
        self._procs.pop(role, None)
        if pid:
            stop_process_group(pid, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """The NodeManager first, then the RM and the JobHistory server (~2 s each, in parallel).

        A NodeManager's clean stop kills its containers within ~3 s, then waits 10 s more for its
        log handler's pending deletions (every application whose logs are kept: 14.8 s measured): it
        gets NM_STOP_SECONDS of SIGTERM, then SIGKILL; containers left are stopped by their PIDs."""
        self._stop_role("nodemanager", min(timeout, NM_STOP_SECONDS))
        self._stop_containers(5.0)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(self._stop_role, role, timeout) for role in ("resourcemanager",
                                                                                     "historyserver")]:
                future.result()
        (self.workdir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalYarn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- REST -------------------------------------------------------------------------------------
    def cluster_info(self) -> dict:
        return self.get(f"{self.rm_web_url}/ws/v1/cluster/info")["clusterInfo"]

    def nodes(self) -> list[dict]:
        return _as_list((self.get(f"{self.rm_web_url}/ws/v1/cluster/nodes").get("nodes") or {}).get("node"))

    def app(self, app_id: str) -> dict:
        """The RM's record of an application (``/ws/v1/cluster/apps/{id}``): ``state``, ``finalStatus``,
        ``progress``, ``diagnostics``, ``startedTime``/``launchTime``/``finishedTime`` (ms), ..."""
        return self.get(f"{self.rm_web_url}/ws/v1/cluster/apps/{app_id}")["app"]

    def apps(self, **query: str) -> list[dict]:
        """Every application the RM knows (``states=RUNNING``, ``queue=...`` filter as the REST API does)."""
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        answer = self.get(f"{self.rm_web_url}/ws/v1/cluster/apps" + (f"?{qs}" if qs else ""))
        return _as_list((answer.get("apps") or {}).get("app"))

    def app_attempts(self, app_id: str) -> list[dict]:
        answer = self.get(f"{self.rm_web_url}/ws/v1/cluster/apps/{app_id}/appattempts")
        return _as_list((answer.get("appAttempts") or {}).get("appAttempt"))

    def wait_app(self, app_id: str, states: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED"),
                 timeout: float = 60.0) -> dict:
        """Poll the RM (every 0.2 s, at most ``timeout`` s) until the application is in one of ``states``."""
        deadline = time.monotonic() + timeout
        app: dict = {}
        while time.monotonic() < deadline:
            try:
                app = self.app(app_id)
                if app.get("state") in states:
                    return app
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(0.2)
        raise TimeoutError(f"{app_id} not in {states} within {timeout:.0f}s: {app.get('state')} "
                           f"{app.get('diagnostics')}")

    def job(self, job_id: str) -> dict:
        """The JobHistory server's record of a finished MapReduce job."""
        return self.get(f"{self.jhs_web_url}/ws/v1/history/mapreduce/jobs/{job_id}")["job"]

    def job_counters(self, job_id: str) -> dict[str, dict[str, int]]:
        """A finished job's counters from the JobHistory server, ``{group: {counter: total}}``
        (REST ``/ws/v1/history/mapreduce/jobs/{job_id}/counters``)."""
        answer = self.get(f"{self.jhs_web_url}/ws/v1/history/mapreduce/jobs/{job_id}/counters")
        return {g["counterGroupName"]: {c["name"]: c["totalCounterValue"] for c in _as_list(g.get("counter"))}
                for g in _as_list(answer["jobCounters"].get("counterGroup"))}

    def job_tasks(self, job_id: str) -> list[dict]:
        """A finished job's tasks (JobHistory server): ``id``, ``type``, ``state``, ``startTime``, ``finishTime``."""
        answer = self.get(f"{self.jhs_web_url}/ws/v1/history/mapreduce/jobs/{job_id}/tasks")
        return _as_list((answer.get("tasks") or {}).get("task"))

    # --- clients ----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """LocalHadoop's client environment with ``HADOOP_CONF_DIR`` = the YARN client configuration."""
        return {**self.hadoop.env(), "HADOOP_CONF_DIR": str(self.conf_dir)}

    def run(self, tool: str, *args: str, timeout: float = 180.0, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``bin/<tool> args`` (LocalHadoop's scripts) with the YARN client configuration."""
        return self.hadoop.run(tool, *args, timeout=timeout, check=check,
                               env={"HADOOP_CONF_DIR": str(self.conf_dir), **(env or {})})

    def hadoop_cmd(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("hadoop", *args, **kwargs)

    def distcp(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """``hadoop distcp args`` on YARN."""
        return self.run("hadoop", "distcp", *args, **kwargs)

    def yarn(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """``yarn args`` (``application -status|-kill|-list``, ``node -list``)."""
        return self.run("yarn", *args, **kwargs)

    # --- logs and state ---------------------------------------------------------------------------
    def container_logs(self, app_id: str | None = None) -> list[Path]:
        """The containers' log files (``syslog``, ``stderr``, ``stdout``), newest application first."""
        apps = sorted(self.container_log_dir.glob(app_id or "application_*"), key=lambda p: p.name, reverse=True)
        return [f for a in apps for f in sorted(a.glob("container_*/*")) if f.is_file()]

    def log_tail(self, lines: int = 25) -> str:
        parts = []
        for role in ROLES:
            path = self.log_dir / f"{role}.log"
            if path.exists():
                parts.append(f"--- {path} ---\n{tail(path, lines)}")
        newest = sorted(self.container_log_dir.glob("application_*"), key=lambda p: p.name)[-1:]
        for app_dir in newest:
            for path in sorted(app_dir.glob("container_*/*")):
                if path.is_file() and path.stat().st_size:
                    parts.append(f"--- {path} ---\n{tail(path, lines)}")
        return "\n".join(parts) or "(no logs)"

    def state(self) -> dict:
        return {"workdir": str(self.workdir), "hadoop_workdir": str(self.hadoop.workdir), "heap": self.heap,
                "nm_memory_mb": self.nm_memory_mb, "nm_vcores": self.nm_vcores,
                "container_mb": self.container_mb, "container_heap": self.container_heap,
                "ports": self.ports, "pids": self.pids}

    def _write_state(self) -> None:
        (self.workdir / STATE_FILE).write_text(json.dumps(self.state(), indent=1))

    @classmethod
    def from_state(cls, workdir: Path) -> LocalYarn | None:
        workdir = Path(workdir).resolve()
        try:
            state = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        hadoop = LocalHadoop.from_state(Path(state["hadoop_workdir"]))
        if hadoop is None:
            return None
        return cls(hadoop, workdir, heap=state["heap"], nm_memory_mb=state["nm_memory_mb"],
                   nm_vcores=state["nm_vcores"], container_mb=state["container_mb"],
                   container_heap=state["container_heap"], ports=state["ports"], pids=state["pids"])

    def describe(self) -> dict:
        return {"conf": str(self.conf_dir), "bin": str(self.hadoop.bin_dir), "rm": self.rm_address,
                "rm_web": self.rm_web_url, "nm_web": self.nm_web_url, "jhs_web": self.jhs_web_url,
                "pids": dict(self.pids), "alive": {role: self.running(role) for role in ROLES},
                "env": self.env()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--workdir", type=Path, default=Path(".demo/yarn"))
    parser.add_argument("--hadoop-workdir", type=Path, default=Path(".demo/hadoop"),
                        help="a LocalHadoop started with `python -m tests.support.local_hdfs start`")
    args = parser.parse_args(argv)
    yarn = LocalYarn.from_state(args.workdir)
    if args.action == "start":
        if yarn is not None and all(yarn.running(r) for r in ROLES):
            print(json.dumps({**yarn.describe(), "already_running": True}, indent=1))
            return 0
        if yarn is not None:
            yarn.stop()
        else:
            hadoop = LocalHadoop.from_state(args.hadoop_workdir)
            if hadoop is None:
                print(f"no Hadoop recorded in {args.hadoop_workdir}: start it first", file=sys.stderr)
                return 1
            yarn = LocalYarn(hadoop, args.workdir)
        yarn.start()
        print(json.dumps(yarn.describe(), indent=1))
        return 0
    if yarn is None:
        print(f"no YARN recorded in {args.workdir.resolve()}", file=sys.stderr)
        return 1 if args.action == "status" else 0
    if args.action == "stop":
        yarn.stop()
    else:
        print(json.dumps(yarn.describe(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
