# ai-fabric-controller: one-command setup, tests, demo and benchmarks.
# Every target that needs the environment runs the idempotent `setup` first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMPS  := $(VENV)/.stamps
APT_PKGS := openvswitch-switch mininet iperf3 ethtool iputils-ping iproute2 python3-venv prometheus etcd-server
OVS_CTL := /usr/share/openvswitch/scripts/ovs-ctl
PROTO_SRC := $(wildcard proto/fabric/v1/*.proto)
PROTO_GEN := $(PROTO_SRC:.proto=_pb2.py)
PYTEST_ARGS ?=

.PHONY: help setup system-packages ovs proto lint test unit integration mutation demo bench clean

help:
	@echo "make demo    - the main job: AI traffic on an emulated leaf-spine, with a report"
	@echo "make test    - the whole suite: lint, unit and integration tests (needs root)"
	@echo "make bench   - benchmarks, side by side, written to out/bench/"
	@echo "make mutation - mutation testing of the pure core (on demand, ~15 min)"
	@echo "make setup   - install everything (idempotent; the targets above run it)"

setup: system-packages $(STAMPS)/python proto ovs

# Debian packages: installed only when one is missing.
system-packages:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "setup: Debian packages present"; fi

# The venv sees Debian's Python packages (Mininet lives there). Ryu 4.34 needs
# an old setuptools and no build isolation (see README, "Environment traps").
$(VENV)/bin/python:
	/usr/bin/python3 -m venv --system-site-packages $(VENV)

$(STAMPS)/ryu: | $(VENV)/bin/python
	$(PIP) install -q "setuptools<67" wheel
	$(PIP) install -q --no-build-isolation ryu==4.34
	@mkdir -p $(STAMPS) && touch $@

# os-ken: the maintained fork of Ryu, the alternative southbound
# (`fabricd --southbound os-ken`); installed beside Ryu, same eventlet.
$(STAMPS)/osken: | $(STAMPS)/ryu
	$(PIP) install -q "os-ken>=4.2,<5"
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/python: pyproject.toml $(STAMPS)/ryu $(STAMPS)/osken
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	@mkdir -p $(STAMPS) && touch $@

proto: $(PROTO_GEN)

proto/fabric/v1/%_pb2.py: proto/fabric/v1/%.proto $(STAMPS)/python
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --grpc_python_out=proto --pyi_out=proto $<

ovs:
	@if ovs-vsctl --timeout=3 show >/dev/null 2>&1; then echo "setup: Open vSwitch running"; \
	else echo "setup: starting Open vSwitch (userspace datapath)"; $(OVS_CTL) start --system-id=random 2>&1 | grep -v ulimit; \
	  ovs-vsctl --timeout=10 show >/dev/null; fi

lint: setup
	$(VENV)/bin/ruff check controller mininet_topos tests benchmarks
	$(VENV)/bin/ruff format --check controller mininet_topos tests benchmarks
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# Mutation testing of the pure core (config: [tool.mutmut] in pyproject.toml).
# On demand only: it runs the unit tests once per mutant. A fresh run each
# time, so the score always reflects the current code and tests; mutmut copies
# the tree into mutants/ (git-ignored). Needs the venv, not Open vSwitch.
# Two API tests compile 4,096-entry policies through the real engine (18-20 s
# each when every core function is instrumented) and the scale benchmark's
# smoke test runs the whole benchmark (20 s); each would run for every
# surviving mutant it reaches. They are left out of mutation runs, which can
# only lower the score (fewer tests), never raise it.
MUTATION_JOBS ?= 2
MUTATION_MIN ?= 90
MUTATION_DESELECT ?= \
	--deselect tests/unit/test_api_hardening.py::test_a_list_larger_than_the_message_limit_comes_in_pages \
	--deselect tests/unit/test_api_hardening.py::test_the_total_rule_budget_is_checked_on_apply \
	--deselect tests/unit/test_te_scale_bench.py::test_quick_benchmark_writes_json_and_markdown
mutation: system-packages $(STAMPS)/python proto
	rm -rf mutants
	PYTEST_ADDOPTS="$(strip $(MUTATION_DESELECT))" $(PY) -m mutmut run --max-children $(MUTATION_JOBS)
	$(PY) -m mutmut results --all true | $(PY) -m controller.devtools.mutation_score --min $(MUTATION_MIN)

demo: setup
	$(PY) -m benchmarks.demo

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) mutants .mypy_cache .ruff_cache .pytest_cache proto/fabric/v1/*_pb2*.py proto/fabric/v1/*_pb2*.pyi
