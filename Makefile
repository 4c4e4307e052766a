# Two commands for a newcomer: `make demo` (set up + run the example end to end) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test test-fast bench bench-transfer bench-airflow bench-yarn clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh tests/support/hadoop/pom.xml tests/support/hadoop/yarn-pom.xml tests/support/hadoop/fetch.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: setup  # KERBEROS=1: the same run on a Kerberized stack (MIT KDC, two realms, secure HDFS, airflow kerberos)
	$(PY) scripts/demo.py $(if $(KERBEROS),--kerberos)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) benchmarks/extract_bench.py

bench-transfer: setup
	$(PY) benchmarks/transfer_bench.py

bench-airflow: setup
	$(PY) benchmarks/airflow_overhead.py

bench-yarn: setup
	$(PY) benchmarks/yarn_bench.py

clean:
	rm -rf .demo .bench .pytest_cache
