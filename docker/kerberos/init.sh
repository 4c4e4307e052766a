#!/bin/bash
# kerberos-init of docker-compose.kerberos.yaml: runs once before the KDC starts, as root, with
# the KDC's database volume and every service's keytab volume mounted. On every start it makes
# what is missing and keeps what exists (a restart changes no key that a service already holds):
#
#   1. the databases of both realms (kdb5_util create -s; the master password from
#      KERBEROS_MASTER_PASSWORD, on stdin, never on a command line);
#   2. the two-way cross-realm trust: krbtgt/TARGET@SOURCE and krbtgt/SOURCE@TARGET in BOTH
#      databases, made from KERBEROS_CROSS_REALM_PASSWORD (same principal, same salt, same
#      password: the same keys on both sides, as a trust needs);
#   3. one principal per service and host, each exported to exactly one keytab (mode 0600, owned
#      by the user the service runs as) on that service's own volume: KEYTABS_DIR/<service>/;
#   4. a TLS CA (CA_DIR, this step's own volume: its key never leaves it) and a PKCS12 keystore per
#      HDFS host (NameNodes, DataNodes: dfs.http.policy=HTTPS_ONLY), protected by
#      HADOOP_KEYSTORE_PASSWORD; the CA's certificate goes to the Airflow volume (WebHDFS checks
#      the NameNodes' and DataNodes' certificates with it).
#
# A principal that is missing from the database gets a new keytab even if an old file exists (the
# database was made anew); a keytab that is missing is exported anew (new keys: the only copy was
# that file). Paths and users can be changed through the environment (tests/test_compose_kerberos.py
# runs this script against a local KDC).
set -euo pipefail

: "${KERBEROS_MASTER_PASSWORD:?KERBEROS_MASTER_PASSWORD: unset or empty}"
: "${KERBEROS_CROSS_REALM_PASSWORD:?KERBEROS_CROSS_REALM_PASSWORD: unset or empty}"
: "${HADOOP_KEYSTORE_PASSWORD:?HADOOP_KEYSTORE_PASSWORD: unset or empty}"
export HADOOP_KEYSTORE_PASSWORD  # openssl reads it from the environment (-passout env:)

SOURCE_REALM=${SOURCE_REALM:-SOURCE.IMPALA-TRANSFER.TEST}
TARGET_REALM=${TARGET_REALM:-TARGET.IMPALA-TRANSFER.TEST}
KDC_DATA_DIR=${KDC_DATA_DIR:-/var/lib/krb5kdc}
KEYTABS_DIR=${KEYTABS_DIR:-/keytabs}
CA_DIR=${CA_DIR:-/stack-ca}
CLUSTER_UID=${CLUSTER_UID:-1000}  # apache/hadoop (hadoop), apache/impala (impala, hive): uid 1000
AIRFLOW_UID=${AIRFLOW_UID:-50000}
KADMIN=${KADMIN:-kadmin.local}
KDB5_UTIL=${KDB5_UTIL:-kdb5_util}
CCACHE_DIR=${CCACHE_DIR:-/ccache}  # the workers' ticket cache volumes, one directory each

umask 077

realm_dir() {  # the directory of a realm's database, as kdc.conf names it
    if [[ $1 == "$SOURCE_REALM" ]]; then echo "$KDC_DATA_DIR/source"; else echo "$KDC_DATA_DIR/target"; fi
}

has_principal() {  # has_principal REALM PRINCIPAL
    "$KADMIN" -r "$1" -q "getprinc $2" 2>/dev/null | grep -qxF "Principal: $2"
}

# ---- 1. databases
for realm in "$SOURCE_REALM" "$TARGET_REALM"; do
    dir=$(realm_dir "$realm")
    mkdir -p "$dir"
    if [[ ! -f $dir/stash ]]; then
        printf '%s\n%s\n' "$KERBEROS_MASTER_PASSWORD" "$KERBEROS_MASTER_PASSWORD" \
            | "$KDB5_UTIL" -r "$realm" create -s >/dev/null
        echo "kerberos-init: database of $realm created"
    fi
done

# ---- 2. cross-realm trust, both ways, in both databases
for realm in "$SOURCE_REALM" "$TARGET_REALM"; do
    for trust in "krbtgt/$TARGET_REALM@$SOURCE_REALM" "krbtgt/$SOURCE_REALM@$TARGET_REALM"; do
        if ! has_principal "$realm" "$trust"; then
            # kadmin.local reads the request on stdin: the password is on no command line.
            printf 'addprinc -pw %s %s\n' "$KERBEROS_CROSS_REALM_PASSWORD" "$trust" | "$KADMIN" -r "$realm" >/dev/null
            echo "kerberos-init: $trust in the database of $realm"
        fi
    done
done

# ---- 3. principals and keytabs
volume() {  # volume SERVICE UID: the service's keytab directory, 0700, owned by its user
    mkdir -p "$KEYTABS_DIR/$1"
    chown "$2:0" "$KEYTABS_DIR/$1"
    chmod 0700 "$KEYTABS_DIR/$1"
}

keytab() {  # keytab SERVICE FILE UID PRINCIPAL
    local service=$1 file=$KEYTABS_DIR/$1/$2 uid=$3 principal=$4
    local realm=${principal##*@}
    volume "$service" "$uid"
    if ! has_principal "$realm" "$principal"; then
        "$KADMIN" -r "$realm" -q "addprinc -randkey $principal" >/dev/null
        rm -f "$file"  # keys of an earlier database
    fi
    if [[ ! -s $file ]]; then
        "$KADMIN" -r "$realm" -q "ktadd -k $file $principal" >/dev/null
        [[ -s $file ]] || { echo "kerberos-init: $principal: no keytab written to $file" >&2; exit 1; }
        echo "kerberos-init: $principal -> $service/$2"
    fi
    chown "$uid:0" "$file"
    chmod 0600 "$file"
}

for side in source target; do
    if [[ $side == source ]]; then realm=$SOURCE_REALM; else realm=$TARGET_REALM; fi
    # HDFS: the daemon's principal and the host's SPNEGO principal (WebHDFS).
    keytab "$side-namenode" nn.service.keytab "$CLUSTER_UID" "nn/$side-namenode@$realm"
    keytab "$side-namenode" spnego.service.keytab "$CLUSTER_UID" "HTTP/$side-namenode@$realm"
    keytab "$side-datanode" dn.service.keytab "$CLUSTER_UID" "dn/$side-datanode@$realm"
    keytab "$side-datanode" spnego.service.keytab "$CLUSTER_UID" "HTTP/$side-datanode@$realm"
    # The metastore and the Impala daemons.
    keytab "$side-hms" hive.service.keytab "$CLUSTER_UID" "hive/$side-hms@$realm"
    for daemon in statestored catalogd impalad; do
        keytab "$side-$daemon" impala.service.keytab "$CLUSTER_UID" "impala/$side-$daemon@$realm"
    done
done
# YARN and the MapReduce history server of the source cluster.
keytab resourcemanager rm.service.keytab "$CLUSTER_UID" "rm/resourcemanager@$SOURCE_REALM"
keytab nodemanager nm.service.keytab "$CLUSTER_UID" "nm/nodemanager@$SOURCE_REALM"
keytab historyserver jhs.service.keytab "$CLUSTER_UID" "jhs/historyserver@$SOURCE_REALM"
# The Airflow workers (and their renewers, and the seeding step): one user principal.
keytab airflow airflow.keytab "$AIRFLOW_UID" "airflow@$SOURCE_REALM"

# ---- 4. TLS: the stack's CA and one keystore per HDFS host
mkdir -p "$CA_DIR"
chmod 0700 "$CA_DIR"
if [[ ! -s $CA_DIR/ca.key || ! -s $CA_DIR/ca.pem ]]; then
    openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 -subj "/CN=impala-transfer stack CA" \
        -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.pem" 2>/dev/null
    echo "kerberos-init: TLS CA created"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for host in source-namenode source-datanode target-namenode target-datanode; do
    store=$KEYTABS_DIR/$host/keystore.p12
    if [[ ! -s $store ]]; then
        openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$host" \
            -keyout "$work/$host.key" -out "$work/$host.csr" 2>/dev/null
        printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$host" > "$work/$host.ext"
        openssl x509 -req -sha256 -days 825 -in "$work/$host.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" \
            -CAcreateserial -extfile "$work/$host.ext" -out "$work/$host.pem" 2>/dev/null
        # PBE-SHA1-3DES and a SHA-1 MAC: a PKCS12 file every Java 8 and 11 reads.
        openssl pkcs12 -export -name "$host" -in "$work/$host.pem" -inkey "$work/$host.key" \
            -certfile "$CA_DIR/ca.pem" -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 \
            -passout env:HADOOP_KEYSTORE_PASSWORD -out "$store"
        echo "kerberos-init: TLS keystore of $host"
    fi
    chown "$CLUSTER_UID:0" "$store"
    chmod 0600 "$store"
done
# The ticket cache volumes of the workers and their renewers: new volumes are root's; the renewer
# (the Airflow user) writes the cache there. Nothing else is written to them here.
if [[ -d $CCACHE_DIR ]]; then
    for dir in "$CCACHE_DIR"/*/; do
        chown "$AIRFLOW_UID:0" "$dir"
        chmod 0700 "$dir"
    done
fi
# Public: the CA's certificate, for the workers' WebHDFS connections.
install -m 0644 -o "$AIRFLOW_UID" -g 0 "$CA_DIR/ca.pem" "$KEYTABS_DIR/airflow/ca.pem"
echo "kerberos-init: done"
