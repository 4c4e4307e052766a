# syntax=docker/dockerfile:1
# The Airflow image of the real stack (docker-compose.yaml, docs/real-stack.md): the official
# Airflow 3.3.2 image with this provider installed from its wheel, pinned to the tested versions of
# constraints.txt, plus what the transfer methods run on a worker: the Hadoop client (hdfs dfs,
# hadoop distcp) with a Java runtime, and OpenSSH's ssh/scp. Nothing is installed when a container
# starts.
#
#   docker compose build            (or: docker build -t impala-transfer-airflow:local .)
#
# The slim image: Airflow core only, so every Python package beyond it comes from constraints.txt
# (the full image brings ~80 providers at versions of its own, which the pins would partly move).
ARG AIRFLOW_IMAGE=apache/airflow:slim-3.3.2-python3.11
# The Hadoop of the stack's clusters: the workers run the very client the clusters run, so a distcp
# job's MapReduce classes on the nodemanager match the ones that submitted it.
ARG HADOOP_IMAGE=apache/hadoop:3.4.1
# Java 11: a runtime Hadoop 3.4 supports (Debian's Java varies with the base image's release).
ARG JAVA_IMAGE=eclipse-temurin:11-jre

FROM ${HADOOP_IMAGE} AS hadoop
FROM ${JAVA_IMAGE} AS java

# ---- build: wheels of the provider and of everything it needs, in a writable directory ----
FROM ${AIRFLOW_IMAGE} AS build
USER root
# gssapi and krb5 (the hdfs provider's Kerberos support) and kerberos (impyla's GSSAPI, the
# provider's `kerberos` extra) have no Linux wheels: they compile here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libkrb5-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER airflow
RUN mkdir -p /home/airflow/build/src
WORKDIR /home/airflow/build
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt src/
COPY --chown=airflow:0 airflow_provider_impala_transfer/ src/airflow_provider_impala_transfer/
# The provider's wheel (setuptools writes its egg-info into this copy, never into a mount) and a
# wheel of every dependency, all at the versions of constraints.txt. Besides the provider: the
# Celery executor with its Redis broker, the PostgreSQL drivers (sync and async) of the metadata
# database, and s3fs for fsspec targets on S3 (MinIO in the stack).
RUN pip wheel --no-cache-dir --wheel-dir wheels --constraint src/constraints.txt \
      "apache-airflow==${AIRFLOW_VERSION}" "./src[kerberos]" \
      apache-airflow-providers-celery redis psycopg2-binary asyncpg s3fs

# ---- the image ----
FROM ${AIRFLOW_IMAGE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --from=java /opt/java/openjdk /opt/java/openjdk
COPY --from=hadoop --chown=root:root /opt/hadoop /opt/hadoop
# The workers' Hadoop client configuration (docker-compose.yaml also mounts it, so edits need no
# rebuild), the airflow-init script and the source cluster's seeding step.
COPY docker/hadoop/client/ /etc/hadoop/conf/
COPY docker/airflow/init.sh docker/seed/run_sql.py docker/seed/source.sql /opt/impala-transfer/
ENV JAVA_HOME=/opt/java/openjdk \
    HADOOP_HOME=/opt/hadoop \
    HADOOP_CONF_DIR=/etc/hadoop/conf \
    PATH=/opt/hadoop/bin:/opt/java/openjdk/bin:${PATH}

USER airflow
# Only from the wheels built above (--no-index): the same versions on every build.
RUN --mount=type=bind,from=build,source=/home/airflow/build,target=/tmp/build \
    pip install --no-cache-dir --no-index --find-links /tmp/build/wheels \
      --constraint /tmp/build/src/constraints.txt \
      "apache-airflow==${AIRFLOW_VERSION}" "airflow-provider-impala-transfer[kerberos]" \
      apache-airflow-providers-celery redis psycopg2-binary asyncpg s3fs \
 && python -c "import airflow_provider_impala_transfer, airflow.providers.celery, s3fs, kerberos, requests_kerberos, hdfs.ext.kerberos" \
 && command -v kinit klist kvno >/dev/null \
 && hdfs version >/dev/null \
 && ssh -V
COPY --chown=airflow:0 dags_examples/ /opt/airflow/dags/
