#!/usr/bin/env bash
# Fetch the Hadoop 3.5.0 of tests/support/hadoop/pom.xml and yarn-pom.xml into <repo>/.hadoop (idempotent):
#   .hadoop/lib/*.jar        the runtime jars (NameNode, DataNode, FsShell, DFSAdmin, DistCp + local job runner)
#   .hadoop/web/webapps/...  the HDFS daemons' web resources (WebHDFS/JMX/UI need them on the class path)
#   .hadoop/yarn/*.jar       what YARN adds (ResourceManager, NodeManager, MRAppMaster, JobHistory server,
#                            job submission to YARN, `yarn application`): yarn-pom.xml's jars that are
#                            not in lib (lib's version wins for an artifact both resolve)
#
# Nothing is done when .hadoop/lib/.stamp already holds the SHA-256 of the two poms. Otherwise Maven
# resolves the artifacts (Maven Central, cached in ~/.m2) into a scratch directory whose contents
# replace .hadoop/lib, .hadoop/web and .hadoop/yarn only when everything succeeded: a failed or
# interrupted fetch never leaves a half-filled directory behind. The stamp is written last.
#
# Usage: bash tests/support/hadoop/fetch.sh [--force]
# Env:   HADOOP_DIST_DIR (default <repo>/.hadoop), MVN (default mvn)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
pom="$here/pom.xml"
yarn_pom="$here/yarn-pom.xml"
dist="${HADOOP_DIST_DIR:-$repo/.hadoop}"
mvn="${MVN:-mvn}"
stamp="$dist/lib/.stamp"

want="$(cat "$pom" "$yarn_pom" | sha256sum | cut -d' ' -f1)"
if [[ "${1:-}" != "--force" && -f "$stamp" && -d "$dist/web/webapps" && -d "$dist/yarn" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if ! command -v "$mvn" >/dev/null 2>&1; then
    echo "fetch.sh: Maven ('$mvn') not found: install it (apt-get install maven) to fetch the Hadoop jars" >&2
    exit 2
fi
if ! command -v java >/dev/null 2>&1 && [[ -z "${JAVA_HOME:-}" ]]; then
    echo "fetch.sh: java not found: install a Java 17 runtime (openjdk-17-jdk-headless)" >&2
    exit 2
fi

mkdir -p "$dist"
tmp="$(mktemp -d "$dist/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/mvn.log"
echo "fetch.sh: fetching Hadoop (tests/support/hadoop/pom.xml) into $dist ..." >&2
if ! "$mvn" -q -B -f "$pom" dependency:copy-dependencies dependency:unpack@webapps \
        -DincludeScope=runtime -DoutputDirectory="$tmp/lib" -Dwebapps.dir="$tmp/web" >"$log" 2>&1; then
    echo "fetch.sh: Maven failed to fetch the Hadoop artifacts (is Maven Central reachable?); its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
if ! "$mvn" -q -B -f "$yarn_pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp/yarn" >"$log" 2>&1; then
    echo "fetch.sh: Maven failed to fetch the YARN artifacts (yarn-pom.xml); its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
count="$(find "$tmp/lib" -maxdepth 1 -name '*.jar' | wc -l)"
if [[ "$count" -eq 0 || ! -d "$tmp/web/webapps/hdfs" || ! -f "$tmp/yarn/hadoop-yarn-server-resourcemanager-3.5.0.jar" ]]; then
    echo "fetch.sh: Maven succeeded but left no jar in $tmp/lib, no webapps/hdfs in $tmp/web or no ResourceManager in $tmp/yarn" >&2
    exit 1
fi
# .hadoop/yarn: only what lib lacks. An artifact lib has in another version (a jar name's part before
# "-<digit>": jakarta.activation-api 1.2.2 vs 1.2.1, netty's per-platform epoll jars) stays lib's.
artifact() { local name="${1##*/}"; echo "${name%%-[0-9]*}"; }
declare -A in_lib=()
for jar in "$tmp/lib"/*.jar; do in_lib["$(artifact "$jar")"]=1; done
for jar in "$tmp/yarn"/*.jar; do
    if [[ -n "${in_lib[$(artifact "$jar")]:-}" ]]; then rm -f "$jar"; fi
done
yarn_count="$(find "$tmp/yarn" -maxdepth 1 -name '*.jar' | wc -l)"
rm -rf "$tmp/web/.markers"
for part in lib web yarn; do
    rm -rf "$dist/$part.old"
    if [[ -e "$dist/$part" ]]; then mv "$dist/$part" "$dist/$part.old"; fi
    mv "$tmp/$part" "$dist/$part"
    rm -rf "$dist/$part.old"
done
echo "$want" >"$stamp"
echo "fetch.sh: $count jars, $(du -sh "$dist/lib" | cut -f1) in $dist/lib; webapps in $dist/web;" \
     "$yarn_count jars, $(du -sh "$dist/yarn" | cut -f1) in $dist/yarn" >&2
