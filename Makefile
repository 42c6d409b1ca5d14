# customer-streaming-pipeline: every user-facing command goes through here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
ANSIBLE_PLAYBOOK := $(VENV)/bin/ansible-playbook
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/src
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Sample data: deterministic, regenerated only when the generator changes.
DATA_ROWS ?= 10000
DATA := files/customers.csv
PYTEST_ARGS ?=
# A comma inside a function call's argument.
, := ,

# The sandbox: one node (inventory/sandbox), or NODES=3 (inventory/sandbox3: three nodes with
# three Kafka brokers, HDFS with two DataNodes, YARN), or PROFILE=hdp (inventory/sandbox-hdp:
# one node as HDP 3.1 is, deployed through inventory/hdp-example). Every playbook target uses it.
NODES ?= 1
PROFILE ?=
NODES_INVENTORY = $(if $(filter 3,$(NODES)),inventory/sandbox3,$(if $(filter 1,$(NODES)),inventory/sandbox,$(error NODES must be 1 or 3, not $(NODES))))
INVENTORY := $(if $(PROFILE),$(if $(filter hdp,$(PROFILE)),inventory/sandbox-hdp,$(error PROFILE must be hdp or empty, not $(PROFILE))),$(NODES_INVENTORY))
export ANSIBLE_INVENTORY := $(CURDIR)/$(INVENTORY)

# The sandbox's smoke test of Spark runs when Spark's files changed; SMOKE=1 runs it anyway.
SMOKE ?=
# make sandbox skips the playbook when the node runs and nothing changed; FULL=1 converges anyway.
FULL ?=
SANDBOX_ARGS := $(if $(SMOKE),-e spark_runtime_verify_always=true,)

.PHONY: help controller-deps venv data sandbox sandbox-down sandbox-clean deploy demo lint chaos soak test checks-and-sandbox integration-and-cluster-sandbox cluster-and-hdp-sandbox test-unit test-long test-integration test-cluster test-hdp test-compat bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

controller-deps: ## Install what the controller needs (systemd-container, debootstrap, JRE, Maven, ...) if missing
	@sandbox/controller-deps

$(VENV)/.installed: requirements/controller.txt requirements/test.txt | controller-deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements/test.txt
	touch $@

venv: controller-deps $(VENV)/.installed ## Create the controller's virtualenv (ansible-core, test tools)

$(DATA): src/customer_pipeline/contract/sample_data.py | $(VENV)/.installed
	$(PY) -m customer_pipeline.contract.sample_data --rows $(DATA_ROWS) --out $@

data: $(DATA) ## Generate the sample CSV files/customers.csv

sandbox: venv data ## Build and boot the sandbox (NODES=3: three nodes with YARN; PROFILE=hdp: HDP 3.1's versions and paths) with Kafka, HDFS, S3 and Spark (FULL=1: converge even if up to date)
	@started=$$(date +%s); \
	if [ -z "$(FULL)$(SMOKE)" ] && $(PY) sandbox/up-to-date $(INVENTORY); then :; else \
	  $(ANSIBLE_PLAYBOOK) sandbox/sandbox.yml $(SANDBOX_ARGS) || exit 1; \
	  $(PY) sandbox/up-to-date $(INVENTORY) --record; fi; \
	echo "make sandbox: $$(( $$(date +%s) - started )) s"

sandbox-down: venv ## Power off the sandbox's nodes (their data persists)
	$(ANSIBLE_PLAYBOOK) sandbox/sandbox_down.yml

sandbox-clean: venv ## Power off the sandbox's nodes and remove their state
	$(ANSIBLE_PLAYBOOK) sandbox/sandbox_down.yml -e sandbox_clean=true

deploy: venv ## Deploy the pipeline (topics, jars, venvs, both services) to the inventory's nodes
	$(ANSIBLE_PLAYBOOK) playbooks/deploy.yml

demo: sandbox deploy ## Bring up the sandbox and run the pipeline end to end
	$(ANSIBLE_PLAYBOOK) sandbox/demo.yml

lint: venv ## ruff, yamllint and ansible-lint (profile production)
	$(VENV)/bin/ruff check src tests plugins bench sandbox/up-to-date sandbox/poweroff-stale-nodes sandbox/renice-nodes sandbox/sandbox_nodes.py
	$(VENV)/bin/yamllint --strict .
	$(VENV)/bin/ansible-lint --profile production

test-unit: venv ## Unit tests (seconds, no services)
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# Tests too long for make test-unit (each says so when skipped there): the 200-batch Delta table
# test and 3 GiB of blank lines through the producer. make test runs them beside the unit tests.
test-long: venv ## The long tests make test-unit skips (LONG_TESTS=1; make test runs them): 200 Delta commits on a local Spark, a 3 GiB sparse object
	LONG_TESTS=1 $(PY) -m pytest tests/unit/test_delta_commit.py tests/unit/test_sparse_object_streaming.py -q \
	  -k "two_hundred or multi_gigabyte" $(PYTEST_ARGS)

test-integration: sandbox ## Tests against the one-node sandbox's real services
	$(PY) -m pytest tests/integration -q -m sandbox --durations=10 $(PYTEST_ARGS)

# The one-node sandbox is powered off first: both fit in memory, but not on two cores.
test-cluster: venv data ## Tests on the three-node sandbox: placement, YARN, producers scaling, losing a worker
	$(MAKE) --no-print-directory sandbox-down NODES=1
	$(MAKE) --no-print-directory sandbox NODES=3
	$(PY) -m pytest tests/integration -q -m cluster3 --durations=10 $(PYTEST_ARGS)

# The HDP profile; the three-node sandbox is powered off first (two cores).
test-hdp: venv data ## Tests on the HDP profile (Kafka 1.1.1 on ZooKeeper, Hadoop 3.1.1, HDP's paths): deploy, verify, reset, verify with inventory/hdp-example's settings
	$(MAKE) --no-print-directory sandbox-down NODES=3 PROFILE=
	$(MAKE) --no-print-directory sandbox PROFILE=hdp
	$(PY) -m pytest tests/integration -q -m hdp --durations=10 $(PYTEST_ARGS)

# HDP 3.1's Kafka: a 1.1.1 broker and ZooKeeper 3.4 run on this machine as Java processes (127.0.0.31,
# ports 2181 and 6667), jars fetched once into .cache/maven/kafka-1.1.1.
test-compat: venv ## Tests against a real Kafka 1.1.1 broker (HDP 3.1): kafka_topic, the producer's transactions, UnknownProducerId
	$(PY) -m pytest tests/compat -q -m kafka_legacy $(PYTEST_ARGS)

# Lint, the unit tests, the Kafka 1.1.1 tests and the long tests need no node, so they run while
# the one-node sandbox builds (mostly waits on downloads, dpkg and JVM starts); the build's, the
# Kafka 1.1.1 tests' and the long tests' outputs are printed once all are done.
checks-and-sandbox: venv data
	@mkdir -p .state; $(MAKE) --no-print-directory sandbox > .state/make-sandbox.log 2>&1 & build=$$!; \
	$(MAKE) --no-print-directory -k test-compat test-long > .state/test-compat-long.log 2>&1 & compat=$$!; \
	checks=0; $(MAKE) --no-print-directory lint test-unit || checks=$$?; \
	compat_rc=0; wait $$compat || compat_rc=$$?; \
	echo "== make test-compat test-long (the Kafka 1.1.1 tests, then the long ones, run while lint and the unit tests ran) =="; \
	cat .state/test-compat-long.log; \
	sandbox=0; wait $$build || sandbox=$$?; \
	echo "== make sandbox (built while lint and the unit tests ran) =="; cat .state/make-sandbox.log; \
	if [ $$checks -ne 0 ] || [ $$compat_rc -ne 0 ] || [ $$sandbox -ne 0 ]; then \
	  echo "lint and unit tests: exit $$checks, make test-compat test-long: exit $$compat_rc, make sandbox: exit $$sandbox"; exit 1; fi

# The one-node tests, then make chaos on the same sandbox. The three-node sandbox builds while
# they run, at nice 19: it takes only the CPU time the tests leave idle (a quarter of it,
# measured), so the tests keep their pace. Its nodes
# inherit that niceness; sandbox/renice-nodes gives them nice 0 once it is done. test-cluster
# then finds it up to date, or finishes what the build could not (its log says why).
integration-and-cluster-sandbox: sandbox
	@mkdir -p .state; nice -n 19 $(MAKE) --no-print-directory sandbox NODES=3 > .state/make-sandbox3.log 2>&1 & build=$$!; \
	tests=0; $(MAKE) --no-print-directory test-integration || tests=$$?; \
	if $(PY) tests/support/ci_budget.py chaos; then $(MAKE) --no-print-directory chaos CHAOS_ARGS="$(TEST_CHAOS_ARGS)" || tests=$$?; fi; \
	sandbox=0; wait $$build || sandbox=$$?; \
	echo "== make sandbox NODES=3 (built at nice 19 while the one-node tests ran) =="; cat .state/make-sandbox3.log; \
	$(PY) sandbox/renice-nodes; \
	if [ $$sandbox -ne 0 ]; then echo "make sandbox NODES=3 failed (exit $$sandbox): test-cluster converges it again"; fi; \
	exit $$tests

# The HDP profile builds the same way while the three-node tests run.
cluster-and-hdp-sandbox: venv data
	@mkdir -p .state; nice -n 19 $(MAKE) --no-print-directory sandbox PROFILE=hdp > .state/make-sandbox-hdp.log 2>&1 & build=$$!; \
	tests=0; if $(PY) tests/support/ci_budget.py cluster3; then $(MAKE) --no-print-directory test-cluster || tests=$$?; fi; \
	sandbox=0; wait $$build || sandbox=$$?; \
	echo "== make sandbox PROFILE=hdp (built at nice 19 while the three-node tests ran) =="; cat .state/make-sandbox-hdp.log; \
	$(PY) sandbox/renice-nodes; \
	if [ $$sandbox -ne 0 ]; then echo "make sandbox PROFILE=hdp failed (exit $$sandbox): test-hdp converges it again"; fi; \
	exit $$tests

# In CI (.ci/run sets CI_DEADLINE), tests/support/ci_budget.py skips make chaos, then the three-node
# tests, then the HDP tests when a slow day leaves them too little time, saying so, rather than
# letting CI time out.
test: checks-and-sandbox ## Everything: lint, unit tests, the three sandboxes and their tests
	$(MAKE) --no-print-directory integration-and-cluster-sandbox cluster-and-hdp-sandbox
	@if $(PY) tests/support/ci_budget.py hdp; then $(MAKE) --no-print-directory test-hdp; fi
	$(MAKE) --no-print-directory audit

# The wheels and jars the pipeline ships or runs against requirements/known-vulnerable.yml
# (docs/security.md): the checked-in sets always, and every wheelhouse and jar set .cache holds,
# which make test has built by the time it runs this; pip-audit too when its PyPI service answers.
.PHONY: audit
audit: venv ## Known vulnerabilities in the wheels and jars (requirements/known-vulnerable.yml); fails on one not accepted
	$(PY) tests/support/artifact_audit.py

# Faults during a 1,000,000-row ingest on the one-node sandbox (tests/chaos/run_chaos.py): every
# kind twice in an order drawn from a printed seed (SEED=N replays it), then verify.yml must
# reconcile exactly; about 17 minutes. make test runs it after the one-node tests with every
# kind once, on 300,000 rows and 15-25 s apart (TEST_CHAOS_ARGS, CI's time; TEST_CHAOS_ARGS=
# runs the whole). NODES=3: the three-node sandbox's kinds (the YARN ApplicationMaster killed,
# one broker of three down for 60 s, the producer killed, a DataNode restarted).
SEED ?=
CHAOS_ARGS ?=
TEST_CHAOS_ARGS ?= --repeats 1 --rows 300000 --objects 2 --min-gap 15 --max-gap 25
chaos: sandbox ## Faults (kill -9, restarts, outages, a reboot, permissions) during a 1,000,000-row ingest; verify must reconcile exactly (SEED=N replays a run)
	$(PY) tests/chaos/run_chaos.py --nodes $(NODES) $(if $(SEED),--seed $(SEED),) $(CHAOS_ARGS)

# The producer at its maximum rate for SOAK_MINUTES on the one-node sandbox (tests/chaos/run_soak.py):
# both services' memory must stay flat, the job's lag bounded, verify.yml exact; prints the
# figures (docs/benchmarks.md). Not part of make test: 30 minutes and gigabytes of rows, which it
# deletes at the end (SOAK_ARGS=--keep leaves them).
SOAK_MINUTES ?= 30
SOAK_ARGS ?=
soak: sandbox ## The producer at its maximum rate for 30 minutes: memory flat, lag bounded, verify exact (SOAK_MINUTES=N)
	$(PY) tests/chaos/run_soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

# Not part of make test (tests/integration/test_bench_smoke.py and test_stream_bench_smoke.py run
# each bench on 10,000 rows there).
bench: sandbox deploy ## Benchmarks on the one-node sandbox, each against a baseline of the same run; writes their tables into docs/benchmarks.md
	$(PY) bench/report.py --rows $(or $(BENCH_ROWS),1000000) --curve $(or $(BENCH_ROWS),100000$(,)1000000$(,)3000000)

clean: ## Remove the virtualenv and downloaded artifacts (not the sandbox)
	rm -rf $(VENV) .cache
