# sidekiq-fleet: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Molecule scenarios run one after another (2-core machines: never two at once).
SCENARIOS ?= default fleet migration

.PHONY: help setup hostdeps lint unit package collection molecule test demo lab-up lab-down docker image bench clean

help:
	@echo "make demo   set up, bring up the lab, run site.yml on it, show the plan and a simulation"
	@echo "make test   set up, lint, unit tests, the installed wheel, molecule scenarios ($(SCENARIOS))"

# Ranges live in pyproject.toml; the exact versions in constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy simulator
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(PY) scripts/role_docs.py --check

hostdeps:
	bash scripts/hostdeps.sh

unit: setup hostdeps
	$(BIN)/pytest -q tests

docker:
	bash scripts/lab.sh docker

image: docker
	bash scripts/lab.sh image

molecule: setup image
	set -e; for s in $(SCENARIOS); do echo "== molecule test -s $$s"; $(BIN)/molecule test -s $$s; done

# A non-editable wheel in a fresh venv without extras runs route, plan and simulate.
package: setup
	bash scripts/check_wheel.sh

# The Ansible collection sidekiq_fleet.fleet: built from a clean tree, installed offline into an
# empty collections path and used by FQCN from a playbook outside the checkout.
collection: setup
	bash scripts/check_collection.sh

test: lint unit package collection molecule

lab-up: setup image
	bash scripts/lab.sh up

lab-down:
	bash scripts/lab.sh down

demo: setup lab-up
	bash scripts/demo.sh

bench: setup
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_floor.py
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_logs.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
