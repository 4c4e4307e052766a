"""Real Apache Hadoop 3.5.0 on this machine: two HDFS clusters, the real FsShell and the real DistCp.

No Docker, no Hadoop distribution: ``tests/support/hadoop/fetch.sh`` resolves the Hadoop jars from
Maven Central into ``<repo>/.hadoop/lib`` (and the daemons' ``webapps`` into ``.hadoop/web``), and
this module runs them:

* :class:`LocalHdfsCluster`: one NameNode and one DataNode, each its own JVM (its own process group,
  stopped by PID), on free 127.0.0.1 ports, formatted on first start, ``dfs.replication=1``,
  permissions ON, WebHDFS on. ``start()``/``stop()`` (and ``stop_namenode()``/``start_namenode()``)
  can be repeated: ports and data survive a restart.
* :class:`LocalHadoop`: two clusters, ``cluster1`` (source) and ``cluster2`` (target), ONE client
  configuration that knows both as HDFS nameservices (``hdfs://cluster1/...``, ``hdfs://cluster2/...``
  as on a real multi-cluster client), and the executables ``<workdir>/bin/hdfs`` (``dfs``,
  ``dfsadmin``, ``getconf``, ``version``) and ``<workdir>/bin/hadoop`` (``distcp``, ``fs``,
  ``version``, ``classpath``) that ``exec`` the real Hadoop classes. DistCp runs its MapReduce job
  with the LOCAL job runner (``mapreduce.framework.name=local``): maps are threads of the client JVM.
  ``<workdir>/bin/yarn`` (``application``, ``node``) and ``bin/hadoop`` with a conf directory that
  holds a yarn-site.xml take ``.hadoop/yarn`` too: see tests/support/local_yarn.py (a real YARN).

Usage::

    python -m tests.support.local_hdfs start --workdir .demo/hadoop   # prints uris, bin, conf, pids
    PATH=.demo/hadoop/bin:$PATH HADOOP_CONF_DIR=.demo/hadoop/conf hdfs dfs -ls hdfs://cluster2/
    python -m tests.support.local_hdfs status --workdir .demo/hadoop
    python -m tests.support.local_hdfs stop --workdir .demo/hadoop

Users. The daemons run as HDFS user ``hdfs`` (``HADOOP_USER_NAME=hdfs``), which makes ``hdfs`` the
NameNode's superuser. The generated executables run as the calling OS user (``root`` here) or
``$HADOOP_USER_NAME``: an ordinary user, so permissions apply to it (a superuser bypasses every
check). ``/`` is made ``0777`` and ``/tmp`` ``1777`` at start, and ``/user/<user>`` is created, so that
user can write anywhere; ``chmod 555`` on a directory then really refuses writes.
:meth:`LocalHadoop.run` takes ``superuser=True`` for ``dfsadmin`` commands such as quotas.

Block size. ``dfs.blocksize`` is a CLIENT setting, stored per file: a cluster's own ``dfs.blocksize``
is only its server default, used by WebHDFS ``CREATE`` and reported by ``getServerDefaults``; a
client writes with its own configuration's value whatever the cluster. With one client
configuration for both clusters (as here, and as on any edge node), "cluster1 uses 1 MiB blocks"
means "cluster1's own clients write 1 MiB blocks". So: each cluster's daemons get their
``block_size``; the client configuration gets ``client_block_size`` (default: cluster2's, as if
distcp ran on the target cluster); :meth:`LocalHdfsCluster.put_bytes` writes through WebHDFS and so
with the cluster's own block size, as that cluster's clients would.

Logging. Hadoop 3.5.0 logs through reload4j (the log4j 1.2 API), so the configuration directories
hold ``log4j.properties`` (a ``log4j2.properties`` would be ignored). The daemons log at INFO into
``<workdir>/<cluster>/logs/{format,namenode,datanode}.log`` (:meth:`LocalHdfsCluster.log_tail`).
Clients log WARN and above to stderr; ``hadoop distcp`` adds INFO for ``org.apache.hadoop.tools``
and ``org.apache.hadoop.mapreduce.Job`` (DistCp's lines, the job's progress and counters).

Verified with Hadoop 3.5.0 and Java 17 (and specified by ``tests/test_local_hdfs.py``):

(a) ``hadoop distcp -update -f hdfs://cluster1/listing hdfs://cluster2/dst`` runs its job on the
    local job runner (``Running job: job_local<N>_0001``) and prints on stderr, as a real distcp
    does, ``Counters: 25`` then the groups ``File System Counters``, ``Map-Reduce Framework``, ...,
    ``DistCp Counters`` with lines such as ``<TAB><TAB>Bytes Copied=2621523``,
    ``Bytes Expected=...``, ``Files Copied=2`` (BYTESCOPIED, BYTESEXPECTED, COPY); a second
    ``-update`` run prints ``Files Skipped=2`` and no ``Files Copied``. Exit codes: 0, or 25
    (``DistCp failure: Job job_local..._0001 has failed``) when a copy fails.
(b) Different block sizes (a 2-block file written with cluster1's 1 MiB blocks, copied by a client
    whose ``dfs.blocksize`` is 2 MiB): plain distcp FAILS its post-copy checksum comparison after
    3 attempts (~8 s): ``java.io.IOException: Checksum mismatch between hdfs://cluster1/... and
    hdfs://cluster2/.../.distcp.tmp.attempt_local..., Source and target differ in block-size.
    Use -pb to preserve block-sizes during copy. You can choose file-level checksum validation via
    -Ddfs.checksum.combine.mode=COMPOSITE_CRC when block-sizes or filesystems are different.``
    (exit 25). BOTH fixes work: ``-pb`` (the target file keeps the source's 1 MiB blocks) and
    ``-Ddfs.checksum.combine.mode=COMPOSITE_CRC`` (block-size independent file checksums; the
    target file gets the client's 2 MiB blocks). Single-block files pass either way.
(c) ``hdfs dfs -Ddfs.checksum.combine.mode=COMPOSITE_CRC -checksum hdfs://cluster2/f`` prints
    e.g. ``hdfs://cluster2/f<TAB>COMPOSITE-CRC32C<TAB>337707aa`` (8 lowercase hex digits), the CRC32C of
    the whole file (:func:`crc32c`), whatever its block size. Without the option:
    ``hdfs://cluster2/f<TAB>MD5-of-4096MD5-of-512CRC32C<TAB>000002000000000000001000910307dd...``
    (56 hex digits: bytes-per-CRC, CRCs-per-block, MD5; ``MD5-of-0MD5...`` for a one-block file), so
    it differs between block sizes. ``-checksum -v`` appends ``<TAB>BlockSize=2097152``.
(d) WebHDFS ``GETFILECHECKSUM`` does NOT honour the combine mode, neither as a query parameter
    (ignored) nor as ``dfs.checksum.combine.mode=COMPOSITE_CRC`` in the daemons' hdfs-site: the
    DataNode's WebHDFS handler calls ``DFSClient.getFileChecksum(path, Long.MAX_VALUE)``, which is
    hard-wired to MD5MD5CRC. The answer is always ``{"FileChecksum": {"algorithm":
    "MD5-of-0MD5-of-512CRC32C", "bytes": "<FsShell's 56 hex digits>00000000", "length": 28}}``.
(e) ``hdfs dfsadmin -setSpaceQuota 1m`` (as the superuser) on a target directory makes a copy into
    it fail: ``cp: The DiskSpace quota of /quota is exceeded: quota = 1048576 B = 1 MB but diskspace
    consumed = 2097152 B = 2 MB`` (a block being written is charged in full, block size x
    replication, so even 6 bytes exceed it); distcp fails with exit 25 and
    ``DSQuotaExceededException: The DiskSpace quota ...``. A ``555`` directory: ``cp: Permission
    denied: user=root, access=WRITE, inode="/read-only":root:supergroup:dr-xr-xr-x``.
(f) ``hdfs dfs -mv hdfs://cluster2/mv/a hdfs://cluster2/mv/b`` with ``b`` an existing directory
    moves ``a`` INTO it (``/mv/b/a``), as POSIX ``mv`` does.
(g) Costs, measured on the 2-core machine when idle (Java 17):

    * ``fetch.sh``: 12.8 s cold (empty ~/.m2, 141 MB downloaded with Maven's plugins), a no-op
      after; ``.hadoop/lib`` 99 jars, 59 MB, plus ``.hadoop/web`` 2.8 MB.
    * :meth:`LocalHadoop.start`: ~8 s for both clusters on fresh directories (formats included),
      plus 2 s once per machine to build the class archive (24 MB in ``.hadoop/cds``); 6 s on
      formatted directories. ``stop()``: 0.4 s. ``stop_namenode()`` 0.4 s, ``start_namenode()``
      until out of safe mode with the DataNode re-registered: 4.3 s.
    * ``hdfs dfs -ls hdfs://cluster2/``: 0.50 s median with the class archive, 0.80 s without
      (best 0.43 / 0.74). ``hadoop distcp`` of an 8 MiB file: 1.7 s.
    * Peak RSS: NameNode 165 MiB, DataNode 125-150 MiB (both ``-Xmx384m``), distcp client JVM
      155 MiB (``-Xmx512m``), FsShell JVM 91 MiB (``-Xmx256m``).

Kerberos. ``LocalHadoop(..., kdc=LocalKdc)`` runs both clusters in Hadoop secure mode, without
root: Kerberos RPC (``hadoop.security.authentication=kerberos``, service-level authorization,
``hadoop.rpc.protection=authentication``), block access tokens and SASL on the DataNodes' data
port (``dfs.data.transfer.protection=authentication`` with ``ignore.secure.ports.for.testing``:
no jsvc, no port below 1024, HTTP_ONLY), WebHDFS behind SPNEGO (``hadoop.http.authentication.*``;
``/jmx`` stays open). cluster1 is in the KDC's realm (``nn|dn|HTTP/localhost@IMPALA-TRANSFER.TEST``),
cluster2 in a second realm the KDC is made to serve, ``TARGET.IMPALA-TRANSFER.TEST``, with a
two-way cross-realm trust (``nn|dn|HTTP/cluster2.target.impala-transfer.test@TARGET...``: see
:meth:`LocalHadoop._kerberize` for why cluster2's principals cannot say ``localhost``).
``auth_to_local`` maps ``user@<either realm>`` to ``user`` and the daemons to ``hdfs`` on both
clusters. Every JVM gets ``-Djava.security.krb5.conf``; the client scripts take it from
``KRB5_CONFIG`` (default: the KDC's), and Hadoop reads the ticket cache ``KRB5CCNAME`` names, so
a process with a ticket runs ``hdfs``/``hadoop distcp`` as its principal; ``HADOOP_USER_NAME``
means nothing there. ``run(..., superuser=True)`` runs with the ticket of ``hdfs@<first realm>``.
The WebHDFS helpers of :class:`LocalHdfsCluster` (``user.name=``) are refused (401) by a Kerberized
cluster. Verified with Hadoop 3.5.0, Java 17 and MIT krb5 1.20 (tests/test_secure_hdfs.py):

* start of the pair (principals, formats, four daemons, bootstrap): 28-50 s measured on the
  2-core machine while two other test runs loaded it (load average 6-11); the plain pair took
  18 s under the same load (8 s idle). Daemon RSS as without Kerberos: NameNode ~165 MiB,
  DataNode ~123 MiB.
* ``hdfs dfs -ls`` with a ticket: ~2 s under that load (``hadoop version``: 0.8 s): the
  class archive does not hold the ~650 Kerberos/SASL classes.
* without a ticket: ``ls: ... Failed on local exception: java.io.IOException:
  org.apache.hadoop.security.AccessControlException: Client cannot authenticate
  via:[TOKEN, KERBEROS]`` (exit 1) in ~2 s. With the KDC unreachable (the service ticket cannot be
  got): ``javax.security.sasl.SaslException: GSS initiate failed [Caused by GSSException: No valid
  credentials provided (Mechanism level: Connection refused)]``; Hadoop retries a failed SASL
  handshake 5 times with random back-offs (~20 s), so the client configuration says
  ``ipc.client.connect.max.retries.on.sasl=1`` (~3-5 s).
* ``hadoop distcp`` fetches delegation tokens of both clusters (renewer:
  ``yarn.resourcemanager.principal``) and needs ``hadoop-yarn-client`` for that
  (``NoClassDefFoundError: org/apache/hadoop/yarn/client/util/YarnClientUtils`` otherwise).

A stopped NameNode fails every client call within seconds: the client configuration bounds
connection retries (``ipc.client.connect.max.retries``, ``dfs.client.failover.max.attempts``,
``ipc.client.connect.timeout``), so a call to a stopped cluster ends in ``Connection refused``
(``ls: Call From <host>/127.0.0.1 to localhost:<port> failed on connection exception:
java.net.ConnectException: Connection refused; ...``, exit 1) after ~1 s; distcp exits 25 in ~1 s.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.processes import alive, free_port, stop_process_group, tail

if TYPE_CHECKING:
    from tests.support.local_kdc import LocalKdc

REPO = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO / "tests" / "support" / "hadoop" / "fetch.sh"
HADOOP_DIST = Path(os.environ.get("HADOOP_DIST_DIR", REPO / ".hadoop"))
MiB = 1024 * 1024

SUPERUSER = "hdfs"  # the daemons' user: the NameNode's superuser
RM_SERVICE = "rm"  # the ResourceManager's principal: rm/localhost@<first realm> (tests/support/local_yarn.py)
PROXIED_USER = "etl-proxied"  # the one user the clients' user may impersonate (HADOOP_PROXY_USER)
NAMENODE_CLASS = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_CLASS = "org.apache.hadoop.hdfs.server.datanode.DataNode"
STATE_FILE = "hadoop.json"

# Daemons: small heap, serial GC, C1 only (least CPU on a 2-core machine), IPv4 loopback.
DAEMON_JVM_OPTIONS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=64m",
                      "-Xss512k", "-Djava.net.preferIPv4Stack=true", "-Xlog:disable",
                      "-Xlog:all=error:stderr"]
# Clients: as above plus no JVM log lines on stdout (they would corrupt `-cat` output).
CLIENT_JVM_OPTIONS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                      "-Djava.net.preferIPv4Stack=true", "-Xlog:disable", "-Xlog:all=error:stderr"]
CLIENT_HEAP = "256m"
# The jars FsShell, DFSAdmin and DistCp (with the local job runner) load classes from, most first
# (counted with -Xlog:class+load): they go first on the clients' class path.
CLIENT_HOT_JARS = [
    "hadoop-hdfs-client", "hadoop-common", "hadoop-shaded-guava", "hadoop-shaded-protobuf_3_25",
    "hadoop-mapreduce-client-core", "commons-configuration2", "woodstox-core", "reload4j", "hadoop-distcp",
    "stax2-api", "re2j", "commons-text", "commons-collections4", "commons-lang3", "commons-logging",
    "commons-cli", "slf4j-api", "hadoop-mapreduce-client-common", "hadoop-auth", "hadoop-yarn-common",
    "hadoop-annotations", "slf4j-reload4j", "hadoop-hdfs", "hadoop-yarn-api", "jackson-core",
    "jackson-databind", "commons-io", "commons-compress",
]
DISTCP_HEAP = "512m"

DAEMON_LOG4J = """\
# Daemon logs (reload4j: Hadoop 3.5 logs through log4j 1.x API): INFO, the chatty loggers at WARN.
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{yy/MM/dd HH:mm:ss,SSS} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.metrics2=WARN
log4j.logger.org.eclipse.jetty=WARN
"""

# Clients: WARN on stderr, as `hdfs dfs` users see it; distcp JVMs get -Dhadoop.tools.log.level=INFO
# so that DistCp's own lines, the job's progress and its counters are printed as a real distcp does.
CLIENT_LOG4J = """\
# Client logging (reload4j). System properties override these two defaults (-Dhadoop.root.logger=...).
hadoop.root.logger=WARN,console
hadoop.tools.log.level=WARN
log4j.rootLogger=${hadoop.root.logger}
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{yy/MM/dd HH:mm:ss} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.tools=${hadoop.tools.log.level}
log4j.logger.org.apache.hadoop.mapreduce.Job=${hadoop.tools.log.level}
"""


# --- jars, java, configuration files ------------------------------------------------------------

def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", "java"), os.X_OK):
        return str(Path(java_home, "bin", "java"))
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java not found on PATH: install a Java 17 runtime (openjdk-17-jre-headless)")
    return str(Path(java).resolve())


def ensure_hadoop(timeout: float = 900.0) -> Path:
    """Run ``fetch.sh`` (a no-op when ``.hadoop`` is up to date); return the ``.hadoop`` directory."""
    env = {**os.environ, "HADOOP_DIST_DIR": str(HADOOP_DIST)}
    try:
        result = subprocess.run(["bash", str(FETCH_SCRIPT)], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{FETCH_SCRIPT} did not finish within {timeout:.0f}s") from None
    if result.returncode != 0:
        raise RuntimeError(f"{FETCH_SCRIPT} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return HADOOP_DIST


def hadoop_jars() -> list[str]:
    jars = sorted(str(p) for p in (HADOOP_DIST / "lib").glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Hadoop jars in {HADOOP_DIST / 'lib'}: run bash {FETCH_SCRIPT}")
    return jars


def _artifact(jar: str) -> str:
    """``/x/hadoop-common-3.5.0.jar`` -> ``hadoop-common``."""
    return re.sub(r"-\d[^/]*$", "", Path(jar).name)


def yarn_jars() -> list[str]:
    """``.hadoop/yarn/*.jar``: what YARN adds to ``.hadoop/lib`` (ResourceManager, NodeManager,
    MRAppMaster, JobHistory server, job submission to YARN, ``yarn application``; tests/support/local_yarn.py).
    Never on the class path of ``hdfs``; on ``hadoop``'s only with a yarn-site.xml in its conf directory."""
    jars = sorted(str(p) for p in (HADOOP_DIST / "yarn").glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no YARN jars in {HADOOP_DIST / 'yarn'}: run bash {FETCH_SCRIPT}")
    return jars


def client_classpath() -> list[str]:
    """Every jar, those the clients load classes from first (most classes first).

    A class is looked up jar by jar along the class path: with the ~150 jars in name order a
    ``hdfs dfs -ls`` JVM took ~1.0 s even with the class archive, with this order ~0.5 s.
    """
    rank = {name: i for i, name in enumerate(CLIENT_HOT_JARS)}
    return sorted(hadoop_jars(), key=lambda jar: (rank.get(_artifact(jar), len(rank)), jar))


def client_user() -> str:
    """Who the clients are: ``$HADOOP_USER_NAME`` or the OS user, as Hadoop's simple auth decides."""
    return os.environ.get("HADOOP_USER_NAME") or getpass.getuser()


def site_xml(properties: dict[str, object]) -> str:
    from xml.sax.saxutils import escape

    lines = ['<?xml version="1.0"?>', "<configuration>"]
    for key, value in properties.items():
        lines.append(f"  <property><name>{escape(key)}</name><value>{escape(str(value))}</value></property>")
    lines.append("</configuration>\n")
    return "\n".join(lines)


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def _http_json(url: str, method: str = "GET", data: bytes | None = None, timeout: float = 10.0) -> dict:
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else {}


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- Kerberos (secure mode) -----------------------------------------------------------------------

@dataclass
class ClusterKerberos:
    """A cluster's Kerberos identity: its realm, the host part of its service principals, the keytab
    holding ``nn/<host>``, ``dn/<host>`` and ``HTTP/<host>`` of that realm, the KDC's krb5.conf, and
    the ``hadoop.security.auth_to_local`` rules (the same on every cluster and client)."""

    realm: str
    host: str
    keytab: Path
    krb5_conf: Path
    auth_to_local: str

    def principal(self, service: str) -> str:
        return f"{service}/{self.host}@{self.realm}"

    def state(self) -> dict:
        return {"realm": self.realm, "host": self.host, "keytab": str(self.keytab),
                "krb5_conf": str(self.krb5_conf), "auth_to_local": self.auth_to_local}


def auth_to_local_rules(realms: list[str]) -> str:
    """Short names for the principals of every realm (not only the default one, which is all that
    Hadoop's ``DEFAULT`` rule strips): ``user@ANY`` -> ``user``; the daemons' ``nn/<host>@ANY`` and
    ``dn/<host>@ANY`` -> ``hdfs``, the HDFS superuser (the NameNode's own short name)."""
    # One rule per realm: a rule's match part may hold no ")" (KerberosName's rule syntax), so no (A|B).
    escaped = [realm.replace(".", r"\.") for realm in realms]
    return "\n".join([
        *(f"RULE:[2:$1@$0]({service}@{realm})s/.*/{SUPERUSER}/" for realm in escaped for service in ("nn", "dn")),
        *(f"RULE:[1:$1@$0](.*@{realm})s/@.*//" for realm in escaped),
        "DEFAULT",
    ])


# --- one cluster ----------------------------------------------------------------------------------

@dataclass
class LocalHdfsCluster:
    """One NameNode and one DataNode (separate JVMs) with their data, conf and logs under ``workdir``."""

    name: str
    workdir: Path
    block_size: int = 1 * MiB
    heap: str = "384m"
    # The daemons' dfs.checksum.combine.mode (None = Hadoop's default). WebHDFS GETFILECHECKSUM
    # ignores it: the DataNode computes MD5MD5CRC whatever it says (see (d) in the module docstring).
    checksum_combine_mode: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    kerberos: ClusterKerberos | None = None  # secure mode (see LocalHadoop's kdc=)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        for key in ("rpc", "http", "dn_data", "dn_http", "dn_ipc"):
            self.ports.setdefault(key, free_port())
        self._procs: dict[str, subprocess.Popen] = {}

    # addresses
    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.ports['rpc']}"

    @property
    def webhdfs_address(self) -> str:
        return f"127.0.0.1:{self.ports['http']}"

    @property
    def http_address(self) -> str:
        return self.webhdfs_address

    @property
    def uri(self) -> str:
        """``hdfs://<name>``: the nameservice, resolved by the client configuration of LocalHadoop."""
        return f"hdfs://{self.name}"

    @property
    def direct_uri(self) -> str:
        """``hdfs://127.0.0.1:<rpc>``: works with any client configuration."""
        return f"hdfs://{self.rpc_address}"

    @property
    def conf_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    # configuration
    def site(self) -> dict[str, dict[str, object]]:
        w, p = self.workdir, self.ports
        core = {
            "fs.defaultFS": self.direct_uri,
            "hadoop.tmp.dir": str(w / "tmp"),
            # The clients' user may act for PROXIED_USER only, from loopback (impersonation tests).
            f"hadoop.proxyuser.{client_user()}.hosts": "127.0.0.1",
            f"hadoop.proxyuser.{client_user()}.users": PROXIED_USER,
        }
        hdfs = {
            "dfs.namenode.name.dir": f"file://{w / 'name'}",
            "dfs.datanode.data.dir": f"file://{w / 'data'}",
            "dfs.namenode.rpc-address": self.rpc_address,
            "dfs.namenode.http-address": self.webhdfs_address,
            "dfs.namenode.https-address": "127.0.0.1:0",
            "dfs.namenode.secondary.http-address": "127.0.0.1:0",
            "dfs.namenode.secondary.https-address": "127.0.0.1:0",
            "dfs.datanode.address": f"127.0.0.1:{p['dn_data']}",
            "dfs.datanode.http.address": f"127.0.0.1:{p['dn_http']}",
            "dfs.datanode.ipc.address": f"127.0.0.1:{p['dn_ipc']}",
            "dfs.datanode.https.address": "127.0.0.1:0",
            "dfs.datanode.hostname": "127.0.0.1",
            "dfs.namenode.datanode.registration.ip-hostname-check": "false",
            "dfs.replication": 1,
            "dfs.blocksize": self.block_size,
            "dfs.namenode.fs-limits.min-block-size": min(self.block_size, MiB),
            "dfs.permissions.enabled": "true",
            "dfs.permissions.superusergroup": "supergroup",
            "dfs.webhdfs.enabled": "true",
            # Small and quick: few handler threads, 1 s heartbeats, no safe-mode extension.
            "dfs.namenode.handler.count": 4,
            "dfs.namenode.service.handler.count": 2,
            "dfs.datanode.handler.count": 3,
            "dfs.heartbeat.interval": 1,
            "dfs.blockreport.initialDelay": 0,
            "dfs.namenode.safemode.extension": 0,
            "dfs.namenode.safemode.min.datanodes": 0,
            "dfs.block.scanner.volume.bytes.per.second": 0,  # no background block scanner
            "dfs.datanode.directoryscan.interval": -1,
        }
        if self.checksum_combine_mode:
            hdfs["dfs.checksum.combine.mode"] = self.checksum_combine_mode
        if self.kerberos is not None:
            core.update(_secure_core(self.kerberos.auth_to_local))
            core.update(self._secure_http())
            # The daemons' tickets (1 h) are renewed from their keytabs before they expire.
            core["hadoop.kerberos.keytab.login.autorenewal.enabled"] = "true"
            hdfs.update(self._secure_hdfs())
        return {"core-site.xml": core, "hdfs-site.xml": hdfs}

    def _secure_http(self) -> dict[str, object]:
        """SPNEGO on the daemons' HTTP servers, WebHDFS included. In Hadoop 3.5.0 WebHDFS's AuthFilter
        takes its settings from ``hadoop.http.authentication.*`` only (AuthFilterInitializer), and
        core-default.xml's ``type=simple`` lets an unauthenticated request through to WebHDFS (which
        then answers 403 "Security enabled but user not authenticated by filter", and honours
        ``user.name``): ``dfs.web.authentication.*`` alone does not protect it. ``/jmx`` stays open
        (``endpoint.whitelist``, as for a metrics scraper): :meth:`wait_ready` reads it."""
        k = self.kerberos
        return {
            "hadoop.http.authentication.type": "kerberos",
            "hadoop.http.authentication.kerberos.principal": k.principal("HTTP"),
            "hadoop.http.authentication.kerberos.keytab": str(k.keytab),
            "hadoop.http.authentication.simple.anonymous.allowed": "false",
            "hadoop.http.authentication.kerberos.endpoint.whitelist": "/jmx",
        }

    def _secure_hdfs(self) -> dict[str, object]:
        """Hadoop secure mode without root (no jsvc, no privileged ports), as Hadoop's own tests run it
        (SaslDataTransferTestCase): block access tokens (DataNode.checkSecureConfig aborts without
        them), SASL on the data transfer port instead of a port below 1024
        (``dfs.data.transfer.protection``), ``ignore.secure.ports.for.testing`` so that an
        unprivileged DataNode with plain-HTTP web ports may start (otherwise Hadoop 3.5.0 demands
        ``dfs.http.policy=HTTPS_ONLY``: "Cannot start secure DataNode due to incorrect config"),
        WebHDFS behind SPNEGO (``HTTP/<host>``)."""
        k = self.kerberos
        return {
            "dfs.block.access.token.enable": "true",
            "dfs.namenode.kerberos.principal": k.principal("nn"),
            "dfs.namenode.keytab.file": str(k.keytab),
            "dfs.datanode.kerberos.principal": k.principal("dn"),
            "dfs.datanode.keytab.file": str(k.keytab),
            "dfs.web.authentication.kerberos.principal": k.principal("HTTP"),
            "dfs.web.authentication.kerberos.keytab": str(k.keytab),
            "dfs.namenode.kerberos.internal.spnego.principal": k.principal("HTTP"),
            "dfs.data.transfer.protection": "authentication",
            "ignore.secure.ports.for.testing": "true",
            "dfs.http.policy": "HTTP_ONLY",
        }

    def write_conf(self) -> None:
        for filename, properties in self.site().items():
            _write_if_changed(self.conf_dir / filename, site_xml(properties))
        _write_if_changed(self.conf_dir / "log4j.properties", DAEMON_LOG4J)

    def _classpath(self) -> str:
        # conf first (core-site.xml, hdfs-site.xml), the daemons' webapps, then the jars.
        return os.pathsep.join([str(self.conf_dir), str(HADOOP_DIST / "web"), *client_classpath()])

    def _daemon_argv(self, main_class: str, *args: str) -> list[str]:
        krb5 = [] if self.kerberos is None else [f"-Djava.security.krb5.conf={self.kerberos.krb5_conf}"]
        return [java_binary(), f"-Xmx{self.heap}", "-Xms32m", *DAEMON_JVM_OPTIONS, *krb5,
                f"-Djava.io.tmpdir={self.workdir / 'tmp'}",
                f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
                f"-Dhadoop.log.dir={self.log_dir}", f"-Dhadoop.home.dir={HADOOP_DIST}",
                f"-Dhadoop.id.str={SUPERUSER}", "-cp", self._classpath(), main_class, *args]

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HADOOP_", "JAVA_TOOL"))}
        env["HADOOP_USER_NAME"] = SUPERUSER
        if self.kerberos is not None:  # the daemons log in from their keytab, never from a caller's cache
            env.pop("KRB5CCNAME", None)
        return env

    @property
    def formatted(self) -> bool:
        return (self.workdir / "name" / "current" / "VERSION").is_file()

    def format(self, timeout: float = 120.0) -> None:
        """``NameNode -format`` a fresh name directory (only ever called when none exists)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / "format.log"
        with open(log_path, "ab") as log:
            try:
                result = subprocess.run(
                    self._daemon_argv(NAMENODE_CLASS, "-format", "-nonInteractive", "-force",
                                      "-clusterid", f"CID-{self.name}"),
                    cwd=self.workdir, env=self._daemon_env(), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{self.name}: NameNode -format took over {timeout:.0f}s:\n"
                                   f"{tail(log_path, 30)}") from None
        if result.returncode != 0 or not self.formatted:
            raise RuntimeError(f"{self.name}: NameNode -format failed (exit {result.returncode}):\n"
                               f"{tail(log_path, 30)}")

    # processes
    def _launch(self, role: str) -> None:
        if self.running(role):
            return
        main_class = NAMENODE_CLASS if role == "namenode" else DATANODE_CLASS
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{role}.log", "ab") as log:
            proc = subprocess.Popen(self._daemon_argv(main_class), cwd=self.workdir, env=self._daemon_env(),
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

    def launch(self) -> None:
        """Format if new, start whichever daemon is not running; do not wait (see :meth:`wait_ready`)."""
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        ensure_hadoop()
        self.write_conf()
        if not self.formatted:
            self.format()
        self._launch("namenode")
        self._launch("datanode")

    def start(self, timeout: float = 120.0) -> LocalHdfsCluster:
        """Launch, wait until ready, open ``/`` to the client user (see :meth:`bootstrap`)."""
        try:
            self.launch()
            self.wait_ready(timeout)
            self.bootstrap(client_user())
        except BaseException:
            self.stop()
            raise
        return self

    def start_namenode(self, timeout: float = 120.0) -> None:
        """Start the NameNode again (after :meth:`stop_namenode`) and wait until it serves again."""
        self._launch("namenode")
        self.wait_ready(timeout)

    def stop_namenode(self, timeout: float = 30.0) -> None:
        self._stop_role("namenode", timeout)

    def stop_datanode(self, timeout: float = 30.0) -> None:
        self._stop_role("datanode", timeout)

    def _stop_role(self, role: str, timeout: float) -> None:
        pid = self.pids.pop(role, None)
        self._procs.pop(role, None)
        if pid:
            stop_process_group(pid, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(self._stop_role, role, timeout) for role in ("datanode", "namenode")]:
                future.result()

    def namesystem_state(self, timeout: float = 3.0) -> dict:
        url = f"http://{self.webhdfs_address}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
        beans = _http_json(url, timeout=timeout).get("beans") or [{}]
        return beans[0]

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the NameNode is out of safe mode with a live DataNode that has space (bounded)."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for role in ("namenode", "datanode"):
                if not self.running(role):
                    raise RuntimeError(f"{self.name}: the {role} exited; logs:\n{self.log_tail()}")
            try:
                state = self.namesystem_state()
                last = (f"FSState={state.get('FSState')} NumLiveDataNodes={state.get('NumLiveDataNodes')} "
                        f"CapacityRemaining={state.get('CapacityRemaining')}")
                if (state.get("FSState") == "Operational" and state.get("NumLiveDataNodes", 0) >= 1
                        and state.get("CapacityRemaining", 0) > 0 and _port_open(self.ports["rpc"])):
                    return
            except (OSError, ValueError) as exc:  # HTTP server not up yet
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        raise TimeoutError(f"{self.name}: not ready within {timeout:.0f}s ({last}); logs:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        parts = []
        for role in ("format", "namenode", "datanode"):
            path = self.log_dir / f"{role}.log"
            if path.exists():
                parts.append(f"--- {path} ---\n{tail(path, lines)}")
        return "\n".join(parts) or "(no logs)"

    # WebHDFS (no JVM): the cluster's own defaults (block size!) apply, as for its own clients
    def webhdfs_url(self, path: str, op: str, user: str | None = None, **params: object) -> str:
        query = {"op": op, "user.name": user or client_user(), **params}
        return (f"http://{self.webhdfs_address}/webhdfs/v1{urllib.parse.quote(path)}?"
                f"{urllib.parse.urlencode(query)}")

    def webhdfs(self, method: str, path: str, op: str, user: str | None = None, timeout: float = 30.0,
                **params: object) -> dict:
        """One WebHDFS call answered by the NameNode (GET follows the redirect to a DataNode)."""
        return _http_json(self.webhdfs_url(path, op, user, **params), method=method, timeout=timeout)

    def put_bytes(self, path: str, data: bytes, user: str | None = None, overwrite: bool = True,
                  timeout: float = 60.0) -> None:
        """Create ``path`` with ``data`` through WebHDFS: the file gets this cluster's block size."""
        location = self.webhdfs("PUT", path, "CREATE", user, timeout=timeout, noredirect="true",
                                overwrite=str(overwrite).lower())["Location"]
        request = urllib.request.Request(location, data=data, method="PUT",
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()

    def read_bytes(self, path: str, user: str | None = None, timeout: float = 60.0) -> bytes:
        """OPEN, redirected to the DataNode. Right after a NameNode restart (the NameNode-down
        tests) the DataNode's side answers 403 for a few seconds: asked again, boundedly."""
        for attempt in range(10):
            try:
                with urllib.request.urlopen(self.webhdfs_url(path, "OPEN", user), timeout=timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                if exc.code != 403 or attempt == 9:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def file_status(self, path: str, user: str | None = None) -> dict:
        return self.webhdfs("GET", path, "GETFILESTATUS", user)["FileStatus"]

    def webhdfs_checksum(self, path: str, user: str | None = None, **params: object) -> dict:
        """``GETFILECHECKSUM``: ``{"algorithm": ..., "bytes": hex, "length": n}``."""
        return self.webhdfs("GET", path, "GETFILECHECKSUM", user, **params)["FileChecksum"]

    def bootstrap(self, user: str) -> None:
        """As the superuser: ``/`` 0777, ``/tmp`` 1777, ``/user/<user>`` owned by ``user`` (idempotent).

        Through WebHDFS's ``user.name``, which a Kerberized cluster refuses (401): there
        :meth:`LocalHadoop.start` does it with the superuser's ticket instead.
        """
        if self.kerberos is not None:
            return
        self.webhdfs("PUT", "/", "SETPERMISSION", SUPERUSER, permission="777")
        self.webhdfs("PUT", "/tmp", "MKDIRS", SUPERUSER, permission="1777")
        self.webhdfs("PUT", "/tmp", "SETPERMISSION", SUPERUSER, permission="1777")
        self.webhdfs("PUT", "/user", "MKDIRS", SUPERUSER, permission="755")
        self.webhdfs("PUT", f"/user/{user}", "MKDIRS", SUPERUSER, permission="755")
        self.webhdfs("PUT", f"/user/{user}", "SETOWNER", SUPERUSER, owner=user)

    def __enter__(self) -> LocalHdfsCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def state(self) -> dict:
        state = {"name": self.name, "workdir": str(self.workdir), "block_size": self.block_size,
                 "heap": self.heap, "checksum_combine_mode": self.checksum_combine_mode,
                 "ports": self.ports, "pids": self.pids}
        if self.kerberos is not None:
            state["kerberos"] = self.kerberos.state()
        return state


# --- two clusters, one client ----------------------------------------------------------------------

CLIENT_SCRIPT = """\
#!/bin/sh
# `{tool} ...` -> the real Hadoop 3.5.0 classes (written by tests/support/local_hdfs.py).
# HADOOP_CONF_DIR (default: the generated {conf}), HADOOP_USER_NAME and HADOOP_CLIENT_OPTS are honoured.
JAVA='{java}'
CP='{classpath}'
ARCHIVE='{archive}'
DEFAULT_CONF='{conf}'
conf="${{HADOOP_CONF_DIR:-$DEFAULT_CONF}}"
{yarn}log4j="$conf/log4j.properties"
[ -f "$log4j" ] || log4j="$DEFAULT_CONF/log4j.properties"
share=""
[ -f "$ARCHIVE" ] && share="-XX:SharedArchiveFile=$ARCHIVE"
heap='{heap}'
logging=""
krb5=""
{security}case "$1" in
{cases}
  *) echo "{tool}: this local client knows: {commands}" >&2; exit 1 ;;
esac
# HADOOP_CLIENT_OPTS is split into words, as Hadoop's own scripts do.
exec "$JAVA" ${{share:+"$share"}} -Xmx$heap {jvm_options} -Dlog4j.configuration="file:$log4j" \\
  -Dhadoop.home.dir='{home}' ${{logging:+"$logging"}} ${{krb5:+"$krb5"}} $HADOOP_CLIENT_OPTS -cp "$CP:$conf" $class "$@"
"""

# WebHDFS PUTs with SPNEGO (requests-kerberos), run as `python -c SPNEGO_PUTS '[[url, host], ...]'`:
# the ticket from KRB5CCNAME, the service principal HTTP/<host> (the URL's host is 127.0.0.1).
SPNEGO_PUTS = """\
import json, sys
import requests
from requests_kerberos import OPTIONAL, HTTPKerberosAuth
for url, host in json.loads(sys.argv[1]):
    answer = requests.put(url, auth=HTTPKerberosAuth(mutual_authentication=OPTIONAL, hostname_override=host),
                          timeout=30)
    if answer.status_code != 200:
        sys.exit(f"PUT {url}: {answer.status_code} {answer.text[:500]}")
"""

COMMANDS = {
    "hdfs": {
        "dfs": "org.apache.hadoop.fs.FsShell",
        "dfsadmin": "org.apache.hadoop.hdfs.tools.DFSAdmin",
        "getconf": "org.apache.hadoop.hdfs.tools.GetConf",
        "version": "org.apache.hadoop.util.VersionInfo",
    },
    "hadoop": {
        "distcp": "org.apache.hadoop.tools.DistCp",
        "fs": "org.apache.hadoop.fs.FsShell",
        "version": "org.apache.hadoop.util.VersionInfo",
        "classpath": None,
    },
    # A YARN client (a conf directory with yarn-site.xml: LocalYarn.conf_dir). As in Hadoop's own
    # `yarn` script, ApplicationCLI gets its sub-command ("application") as its first argument.
    "yarn": {
        "application": "org.apache.hadoop.yarn.client.cli.ApplicationCLI",
        "node": "org.apache.hadoop.yarn.client.cli.NodeCLI",
        "version": "org.apache.hadoop.util.VersionInfo",
        "classpath": None,
    },
}
# Commands whose main class gets the command word itself as its first argument.
UNSHIFTED_COMMANDS = {"version", "application"}
# The YARN jars join a client's class path (after .hadoop/lib, so the class archive still applies):
# always for `yarn`; for `hadoop` when its conf directory holds a yarn-site.xml (distcp on YARN needs
# hadoop-mapreduce-client-jobclient's YarnClientProtocolProvider and YarnClientImpl's dependencies);
# never for `hdfs`. The test is a shell builtin: no cost for the local-runner configuration.
YARN_CLASSPATH_WHEN = {"yarn": "always", "hadoop": "yarn-site.xml"}


@dataclass
class LocalHadoop:
    """``cluster1`` (source) and ``cluster2`` (target), one client conf, ``bin/hdfs`` and ``bin/hadoop``."""

    workdir: Path
    block_sizes: dict[str, int] = field(default_factory=lambda: {"cluster1": 1 * MiB, "cluster2": 2 * MiB})
    # The daemons' dfs.checksum.combine.mode per cluster. It changes nothing WebHDFS answers (see (d)).
    checksum_combine_modes: dict[str, str | None] = field(default_factory=dict)
    client_block_size: int | None = None  # None = the last (target) cluster's block size
    heap: str = "384m"
    class_archive: bool = True
    clusters: dict[str, LocalHdfsCluster] = field(default_factory=dict)
    # Secure mode: a running tests.support.local_kdc.LocalKdc. Each cluster's realm: ``realms``
    # (default: cluster1 in the KDC's realm, cluster2 in "TARGET.<that realm>", a realm the KDC
    # is made to serve too, trusting the first both ways). See :meth:`_kerberize`.
    kdc: LocalKdc | None = None
    realms: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        for name, block_size in self.block_sizes.items():
            if name not in self.clusters:
                self.clusters[name] = LocalHdfsCluster(
                    name, self.workdir / name, block_size=block_size, heap=self.heap,
                    checksum_combine_mode=self.checksum_combine_modes.get(name))
        if self.client_block_size is None:
            self.client_block_size = list(self.clusters.values())[-1].block_size
        if self.kdc is not None:
            self._kerberize()

    # --- secure mode ------------------------------------------------------------------------------
    @property
    def kerberos_dir(self) -> Path:
        return self.workdir / "kerberos"

    @property
    def superuser_keytab(self) -> Path:
        return self.kerberos_dir / f"{SUPERUSER}.keytab"

    @property
    def superuser_ccache(self) -> Path:
        return self.kerberos_dir / f"{SUPERUSER}.ccache"

    @property
    def superuser_principal(self) -> str:
        return f"{SUPERUSER}@{self.kdc.realm}"

    def _kerberize(self) -> None:
        """Each cluster's realm and the host part of its service principals.

        The host part: ``localhost`` for a cluster in the KDC's first realm (krb5.conf maps
        ``localhost`` there). A cluster in another realm gets ``<cluster>.<realm, lower case>``
        (``cluster2.target.impala-transfer.test``), a name the KDC's krb5.conf maps to that realm
        and that nothing needs to resolve: both clusters listen on 127.0.0.1 and a host has ONE
        realm. Hadoop's RPC client never uses the principal configured for a NameNode to reach it:
        the NameNode advertises ``nn/<host>`` (its own principal without the realm) and the Java
        GSS client asks for the host-based name ``nn@<host>``, whose realm comes from
        ``[domain_realm]``; with ``dns_canonicalize_hostname=false`` the name is not looked up.
        So ``nn/localhost@TARGET...`` would be asked for in the first realm, and fail.
        """
        first = self.kdc.realm
        names = list(self.clusters)
        realms = {name: first for name in names}
        if len(names) > 1:
            realms[names[-1]] = f"TARGET.{first}"
        realms.update(self.realms or {})
        self.realms = realms
        rules = auth_to_local_rules(sorted(set(realms.values()), key=lambda r: (r != first, r)))
        for name, cluster in self.clusters.items():
            realm = realms[name]
            host = "localhost" if realm == first else f"{name}.{realm.lower()}"
            cluster.kerberos = ClusterKerberos(realm=realm, host=host, keytab=cluster.workdir / "hdfs.keytab",
                                               krb5_conf=self.kdc.krb5_conf, auth_to_local=rules)

    def _make_principals(self) -> None:
        """Register the other realms with the KDC, the clusters' service principals (one keytab per
        cluster: ``nn``, ``dn``, ``HTTP``) and the superuser ``hdfs@<first realm>``, whose ticket
        (:attr:`superuser_ccache`) is what ``run(..., superuser=True)`` runs with."""
        for name, cluster in self.clusters.items():
            k = cluster.kerberos
            if k.realm != self.kdc.realm:
                self.kdc.add_realm(k.realm, [k.host])
        for name, cluster in self.clusters.items():
            k = cluster.kerberos
            if not k.keytab.is_file():
                principals = [k.principal(service) for service in ("nn", "dn", "HTTP")]
                for principal in principals:
                    self._add_principal(principal)
                self.kdc.export_keytab(k.keytab, *principals)
        if not self.superuser_keytab.is_file():
            self._add_principal(self.superuser_principal)
            self.kdc.export_keytab(self.superuser_keytab, self.superuser_principal)
        self.kdc.kinit(self.superuser_principal, self.superuser_keytab, self.superuser_ccache)

    def _add_principal(self, principal: str) -> None:
        """A new principal; one kept from an earlier start of the same clusters (same KDC) is reused."""
        try:
            self.kdc.add_principal(principal)
        except RuntimeError as exc:
            if "already exists" not in str(exc):
                raise

    def _secure_bootstrap(self, timeout: float = 60.0) -> None:
        """As ``hdfs`` (the superuser's ticket): ``/`` 0777 and ``/tmp`` 1777 on every cluster (a
        principal's ``/user/<name>`` is its own affair).

        Through WebHDFS with SPNEGO, in a Python child whose environment names the KDC's krb5.conf
        and the superuser's cache (MIT krb5 reads both only from the environment, and this
        process's environment is the tests'): ~0.3 s, where three FsShell JVMs took 2-6 s.
        """
        calls = [(f"http://{c.webhdfs_address}/webhdfs/v1{path}?op={op}&permission={mode}", c.kerberos.host)
                 for c in self.clusters.values()
                 for path, op, mode in (("/", "SETPERMISSION", "777"), ("/tmp", "MKDIRS", "1777"),
                                        ("/tmp", "SETPERMISSION", "1777"))]
        env = {**os.environ, "KRB5_CONFIG": str(self.kdc.krb5_conf), "KRB5CCNAME": f"FILE:{self.superuser_ccache}"}
        try:
            result = subprocess.run([sys.executable, "-c", SPNEGO_PUTS, json.dumps(calls)], env=env,
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                    check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the secure bootstrap took over {timeout:.0f}s") from None
        if result.returncode != 0:
            raise RuntimeError(f"the secure bootstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")

    def _script_security(self) -> str:
        """The client scripts' Kerberos lines: the JVM reads the krb5.conf that ``KRB5_CONFIG`` names
        (Java ignores that variable by itself; its first file, as Java takes one), else the KDC's.
        ``KRB5CCNAME`` needs nothing: Hadoop's login reads it as the ticket cache."""
        if self.kdc is None:
            return ""
        return (f'krb5_config="${{KRB5_CONFIG:-{self.kdc.krb5_conf}}}"\n'
                'krb5="-Djava.security.krb5.conf=${krb5_config%%:*}"\n')

    @property
    def conf_dir(self) -> Path:
        return self.workdir / "conf"

    @property
    def bin_dir(self) -> Path:
        return self.workdir / "bin"

    @property
    def source(self) -> LocalHdfsCluster:
        return self.clusters["cluster1"]

    @property
    def target(self) -> LocalHdfsCluster:
        return self.clusters["cluster2"]

    def __getitem__(self, name: str) -> LocalHdfsCluster:
        return self.clusters[name]

    # client configuration
    def client_site(self) -> dict[str, dict[str, object]]:
        w = self.workdir / "client"
        names = list(self.clusters)
        core = {
            "fs.defaultFS": f"hdfs://{names[0]}",
            "hadoop.tmp.dir": str(w / "tmp"),
            # A stopped NameNode must fail calls in seconds: one quick connect retry, short timeouts.
            "ipc.client.connect.max.retries": 1,
            "ipc.client.connect.retry.interval": 200,
            "ipc.client.connect.max.retries.on.timeouts": 1,
            "ipc.client.connect.timeout": 2000,
        }
        hdfs: dict[str, object] = {
            "dfs.nameservices": ",".join(names),
            "dfs.replication": 1,
            "dfs.blocksize": self.client_block_size,
            "dfs.client.failover.max.attempts": 2,
            "dfs.client.failover.sleep.base.millis": 100,
            "dfs.client.failover.sleep.max.millis": 500,
            "dfs.client.failover.connection.retries": 0,
            "dfs.client.failover.connection.retries.on.timeouts": 0,
            "dfs.client.retry.window.base": 200,  # block-read retries against a missing DataNode
        }
        for name, cluster in self.clusters.items():
            hdfs[f"dfs.ha.namenodes.{name}"] = "nn1"
            hdfs[f"dfs.namenode.rpc-address.{name}.nn1"] = cluster.rpc_address
            hdfs[f"dfs.namenode.http-address.{name}.nn1"] = cluster.webhdfs_address
            hdfs[f"dfs.client.failover.proxy.provider.{name}"] = (
                "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider")
        mapred = {
            "mapreduce.framework.name": "local",
            "mapreduce.cluster.local.dir": str(w / "mapred" / "local"),
            "mapreduce.cluster.temp.dir": str(w / "mapred" / "temp"),
            "mapreduce.jobtracker.staging.root.dir": f"file://{w / 'mapred' / 'staging'}",
            "mapreduce.local.map.tasks.maximum": 2,
            "mapreduce.task.io.sort.mb": 16,
            "mapreduce.client.progressmonitor.pollinterval": 200,
            "mapreduce.client.completion.pollinterval": 200,
        }
        if self.kdc is not None:
            core.update(_secure_core(self.source.kerberos.auth_to_local))
            # A failed Kerberos handshake (KDC unreachable, no service ticket) is retried 5 times with
            # random back-offs of up to seconds by default: ~20 s per call. One retry: ~3-5 s.
            core["ipc.client.connect.max.retries.on.sasl"] = 1
            hdfs.update({
                # One client configuration for NameNodes with different principals (realms): accept
                # whichever principal a NameNode advertises (Hadoop's advice for cross-realm distcp)
                # instead of comparing it with one dfs.namenode.kerberos.principal.
                "dfs.namenode.kerberos.principal.pattern": "*",
                "dfs.data.transfer.protection": "authentication",  # SASL with the DataNodes
            })
            # DistCp (TokenCache) fetches delegation tokens of both clusters naming the ResourceManager's
            # principal as their renewer, even on the local job runner (Master.getMasterPrincipal ->
            # YarnClientUtils.getRmPrincipal: hadoop-yarn-client must be on the class path), and
            # refuses to run without one ("Can't get Master Kerberos principal for use as renewer").
            # The principal tests/support/local_yarn.py's ResourceManager logs in as (rm/<host>, as on a
            # real cluster's rm/_HOST): renewer "rm" in the tokens, the RM's own short name.
            mapred["yarn.resourcemanager.principal"] = f"{RM_SERVICE}/localhost@{self.kdc.realm}"
        return {"core-site.xml": core, "hdfs-site.xml": hdfs, "mapred-site.xml": mapred}

    def write_client(self) -> None:
        for filename, properties in self.client_site().items():
            _write_if_changed(self.conf_dir / filename, site_xml(properties))
        _write_if_changed(self.conf_dir / "log4j.properties", CLIENT_LOG4J)
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        archive = str(self.archive_path()) if self.class_archive else ""
        for tool, commands in COMMANDS.items():
            cases = []
            for command, main_class in commands.items():
                if main_class is None:  # `hadoop classpath`
                    cases.append(f'  {command}) echo "$CP:$conf"; exit 0 ;;')
                    continue
                steps = [] if command in UNSHIFTED_COMMANDS else ["shift"]
                steps.append(f"class={main_class}")
                if command == "distcp":  # the job's progress and counters, as a real distcp prints them
                    steps += [f"heap='{DISTCP_HEAP}'", "logging='-Dhadoop.tools.log.level=INFO'"]
                cases.append(f"  {command}) {'; '.join(steps)} ;;")
            when = YARN_CLASSPATH_WHEN.get(tool)
            yarn = ""
            if when == "always":
                yarn = f"CP=\"$CP:{os.pathsep.join(yarn_jars())}\"\n"
            elif when:
                yarn = f"[ -f \"$conf/{when}\" ] && CP=\"$CP:{os.pathsep.join(yarn_jars())}\"\n"
            text = CLIENT_SCRIPT.format(
                tool=tool, java=java_binary(), classpath=os.pathsep.join(client_classpath()), archive=archive,
                yarn=yarn,
                conf=self.conf_dir, heap=CLIENT_HEAP, cases="\n".join(cases),
                commands=", ".join(commands), jvm_options=" ".join(CLIENT_JVM_OPTIONS), home=HADOOP_DIST,
                security=self._script_security())
            _write_if_changed(self.bin_dir / tool, text)
            (self.bin_dir / tool).chmod(0o755)

    # JVM class-data archive
    def archive_path(self) -> Path:
        """One archive per (java, jar set), shared by every workdir: ``.hadoop/cds/client-<key>.jsa``."""
        digest = hashlib.sha256(java_binary().encode())
        for jar in client_classpath():
            stat = os.stat(jar)
            digest.update(f"{jar}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return HADOOP_DIST / "cds" / f"client-{digest.hexdigest()[:16]}.jsa"

    def build_class_archive(self, timeout: float = 120.0) -> Path | None:
        """Record the classes of one FsShell ``-put`` to cluster1 (built once, ~3 s; best effort).

        The archive holds the jars' classes only (the conf directory comes after them on the class
        path, which a dynamic archive allows), so it serves every workdir and every tool.
        """
        archive = self.archive_path()
        if archive.is_file():
            return archive
        archive.parent.mkdir(parents=True, exist_ok=True)
        scratch = archive.with_name(f".{archive.name}.{os.getpid()}")
        sample = self.workdir / "client" / "archive-sample.txt"
        sample.parent.mkdir(parents=True, exist_ok=True)
        sample.write_text("class archive sample\n")
        argv = [java_binary(), f"-XX:ArchiveClassesAtExit={scratch}", f"-Xmx{CLIENT_HEAP}", *CLIENT_JVM_OPTIONS,
                f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
                "-cp", os.pathsep.join([*client_classpath(), str(self.conf_dir)]), COMMANDS["hdfs"]["dfs"],
                "-put", "-f", str(sample), f"{self.source.uri}/tmp/.class-archive-sample"]
        try:
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                                    check=False)
        except subprocess.TimeoutExpired:
            scratch.unlink(missing_ok=True)
            return None
        if result.returncode != 0 or not scratch.is_file():
            scratch.unlink(missing_ok=True)
            return None
        os.replace(scratch, archive)
        for stale in archive.parent.glob("client-*.jsa"):  # made for jars that are gone
            if stale != archive:
                stale.unlink(missing_ok=True)
        return archive

    # lifecycle
    def start(self, timeout: float = 180.0, attempts: int = 3) -> LocalHadoop:
        """Start both clusters. A free port can be taken by another process between our choosing it
        and a daemon binding it ("Port in use"): then everything starts again on fresh ports."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ensure_hadoop()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
                return self
            except RuntimeError:
                self.stop()
                port_taken = any("BindException" in c.log_tail(200) for c in self.clusters.values())
                if not port_taken or attempt == attempts:
                    raise
                for cluster in self.clusters.values():
                    cluster.ports = {key: free_port() for key in cluster.ports}
            except BaseException:
                self.stop()
                raise
        return self

    def _start_once(self, timeout: float) -> None:
        if self.kdc is not None:
            self._make_principals()
        for cluster in self.clusters.values():
            cluster.launch()
        self.write_client()
        self._write_state()
        deadline = time.monotonic() + timeout
        for cluster in self.clusters.values():
            cluster.wait_ready(max(1.0, deadline - time.monotonic()))
            cluster.bootstrap(self.user)
        if self.kdc is not None:
            self._secure_bootstrap()
        if self.class_archive and self.kdc is None:  # (secure clusters use it once a plain start built it)
            self.build_class_archive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every daemon by PID, all at the same time (each takes ~2 s to shut down cleanly)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(c.stop, timeout) for c in self.clusters.values()]:
                future.result()
        (self.workdir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalHadoop:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def user(self) -> str:
        return client_user()

    def webhdfs_connection_json(self, cluster: LocalHdfsCluster) -> str:
        """An Airflow ``webhdfs`` connection (the hdfs provider's) to ``cluster``, as JSON for ``AIRFLOW_CONN_*``."""
        host, port = cluster.webhdfs_address.split(":")
        return json.dumps({"conn_type": "webhdfs", "host": host, "port": int(port), "login": self.user})

    # clients
    def env(self) -> dict[str, str]:
        """Environment additions for subprocesses: ``bin`` first on PATH, HADOOP_CONF_DIR."""
        env = {"PATH": os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", os.defpath)]),
               "HADOOP_CONF_DIR": str(self.conf_dir)}
        if self.kdc is not None:  # the realm's krb5.conf; the ticket cache (KRB5CCNAME) is the caller's
            env["KRB5_CONFIG"] = str(self.kdc.krb5_conf)
        return env

    def run(self, tool: str, *args: str, superuser: bool = False, timeout: float = 120.0,
            check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``bin/<tool> args`` (text output captured); ``superuser`` runs it as ``hdfs`` (with
        Kerberos: with the ticket of ``hdfs@<realm>``)."""
        full_env = {**os.environ, **self.env(), **(env or {})}
        if superuser and self.kdc is not None:  # a fresh ticket (~30 ms): the session may outlive one
            self.kdc.kinit(self.superuser_principal, self.superuser_keytab, self.superuser_ccache)
            full_env["KRB5CCNAME"] = f"FILE:{self.superuser_ccache}"
        elif superuser:
            full_env["HADOOP_USER_NAME"] = SUPERUSER
        result = subprocess.run([str(self.bin_dir / tool), *args], env=full_env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def hdfs(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("hdfs", *args, **kwargs)

    def hadoop(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("hadoop", *args, **kwargs)

    def export_root(self, uri: str, owner: str, *, engine: str = "hive", share: bool = True) -> str:
        """What an administrator sets up for the server-side export (README, Kerberos), as the
        superuser: ``uri`` owned by ``owner`` (the run's user) and writable by the ``engine``'s user;
        with ``share``, the default ACL that makes what the engine writes beneath it the owner's too."""
        acl = f"user:{engine}:rwx" + (f",default:user:{owner}:rwx,default:user:{engine}:rwx" if share else "")
        for command in (["-mkdir", "-p", uri], ["-chown", owner, uri], ["-setfacl", "-m", acl, uri]):
            self.hdfs("dfs", *command, superuser=True, check=True)
        return uri

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(f"=== {name} ===\n{c.log_tail(lines)}" for name, c in self.clusters.items())

    # state, for the command line
    def _write_state(self) -> None:
        state = {"client_block_size": self.client_block_size, "class_archive": self.class_archive,
                 "clusters": {name: c.state() for name, c in self.clusters.items()}}
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=1))

    @classmethod
    def from_state(cls, workdir: Path) -> LocalHadoop | None:
        workdir = Path(workdir).resolve()
        try:
            state = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        clusters = {name: LocalHdfsCluster(c["name"], Path(c["workdir"]), block_size=c["block_size"],
                                           heap=c["heap"], checksum_combine_mode=c["checksum_combine_mode"],
                                           ports=c["ports"], pids=c["pids"],
                                           kerberos=_kerberos_from_state(c.get("kerberos")))
                    for name, c in state["clusters"].items()}
        return cls(workdir, block_sizes={n: c.block_size for n, c in clusters.items()},
                   checksum_combine_modes={n: c.checksum_combine_mode for n, c in clusters.items()},
                   client_block_size=state["client_block_size"], class_archive=state["class_archive"],
                   clusters=clusters)

    def describe(self) -> dict:
        return {
            "bin": str(self.bin_dir), "conf": str(self.conf_dir),
            "clusters": {name: {"uri": c.uri, "rpc": c.rpc_address, "webhdfs": c.webhdfs_address,
                                "block_size": c.block_size,
                                "pids": {role: pid for role, pid in c.pids.items()},
                                "alive": {role: c.running(role) for role in ("namenode", "datanode")}}
                         for name, c in self.clusters.items()},
            "env": self.env(),
        }


def _secure_core(auth_to_local: str) -> dict[str, object]:
    """core-site.xml of secure mode, the same for daemons and clients."""
    return {
        "hadoop.security.authentication": "kerberos",
        "hadoop.security.authorization": "true",  # service-level ACLs (all "*" without a hadoop-policy.xml)
        "hadoop.rpc.protection": "authentication",
        "hadoop.security.auth_to_local": auth_to_local,
    }


def _kerberos_from_state(state: dict | None) -> ClusterKerberos | None:
    if not state:
        return None
    return ClusterKerberos(realm=state["realm"], host=state["host"], keytab=Path(state["keytab"]),
                           krb5_conf=Path(state["krb5_conf"]), auth_to_local=state["auth_to_local"])


# --- CRC32C (to check COMPOSITE-CRC32C values) ---------------------------------------------------

def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``: the ``crc32c`` package if installed, else pure Python."""
    try:
        import crc32c as fast  # type: ignore[import-not-found]

        return fast.crc32c(data)
    except ImportError:
        pass
    crc, table = 0xFFFFFFFF, _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--workdir", type=Path, default=Path(".demo/hadoop"))
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    hadoop = LocalHadoop.from_state(workdir)
    if args.action == "start":
        if hadoop is not None and all(c.running(r) for c in hadoop.clusters.values()
                                      for r in ("namenode", "datanode")):
            print(json.dumps({**hadoop.describe(), "already_running": True}, indent=1))
            return 0
        if hadoop is not None:  # partly running: stop what is left, start again with the same ports
            hadoop.stop()
        else:
            hadoop = LocalHadoop(workdir)
        hadoop.start()
        print(json.dumps(hadoop.describe(), indent=1))
        return 0
    if hadoop is None:
        print(f"no Hadoop recorded in {workdir}", file=sys.stderr)
        return 1 if args.action == "status" else 0
    if args.action == "stop":
        hadoop.stop()
    else:
        print(json.dumps(hadoop.describe(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
