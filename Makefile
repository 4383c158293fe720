# Music Box: `make run` runs the whole job on the embedded Spark, `make test`
# runs every test. Both create the virtual environment when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MUSICBOX_DATA_DIR ?= $(CURDIR)/data
export MUSICBOX_PROJECT_DIR := $(CURDIR)
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
RAW_DIR := $(MUSICBOX_DATA_DIR)/raw
USERS ?= 59000
SEED ?= 20170330

.PHONY: help run test lint format venv data land build train docs clean \
	servers-start servers-stop build-thrift train-cluster

help:
	@echo "make run    generate data if data/raw is empty, land it, dbt build, train"
	@echo "make test   lint the SQL and Python, then run the whole test suite"
	@echo "make lint   sqlfluff, ruff and codespell only"
	@echo "make docs   dbt docs generate (then: $(BIN)/dbt docs serve)"
	@echo "make servers-start / servers-stop   shared metastore, Thrift server, Spark cluster"
	@echo "make build-thrift    dbt build --target thrift (servers started)"
	@echo "make train-cluster   musicbox train all through spark-submit on the cluster"

$(BIN)/musicbox: pyproject.toml
	@scripts/check_prerequisites.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/musicbox

# Uses the archives already in data/raw; generates the default-size
# synthetic dataset only when there are none.
data: venv
	@if [ -z "$$(find $(RAW_DIR) -name '*.tar.gz' -print -quit 2>/dev/null)" ]; then \
		echo "no archives in $(RAW_DIR): generating $(USERS) synthetic users"; \
		$(BIN)/musicbox generate --users $(USERS) --seed $(SEED) --out $(RAW_DIR); \
	else \
		echo "using the archives in $(RAW_DIR)"; \
	fi

land: data
	$(BIN)/musicbox land $(RAW_DIR)

build: land
	$(BIN)/dbt build

train: build
	$(BIN)/musicbox train all

run: train
	@echo "marts: $(MUSICBOX_DATA_DIR)/spark/warehouse (schemas music_box_*)"

test: venv lint
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check python_ml tests scripts
	$(BIN)/ruff format --check python_ml tests scripts
	$(BIN)/codespell python_ml tests/python_ml tests/integration models macros docs README.md
	MUSICBOX_DATA_DIR=$$(mktemp -d) $(BIN)/sqlfluff lint models analyses tests

format: venv
	$(BIN)/ruff format python_ml tests scripts
	$(BIN)/ruff check --fix python_ml tests scripts

docs: venv
	$(BIN)/dbt docs generate

servers-start: venv
	$(BIN)/musicbox metastore start
	$(BIN)/musicbox thrift start
	$(BIN)/musicbox cluster start

servers-stop: venv
	-$(BIN)/musicbox cluster stop
	-$(BIN)/musicbox thrift stop
	-$(BIN)/musicbox metastore stop

build-thrift: land
	$(BIN)/dbt build --target thrift

train-cluster: venv
	$(BIN)/musicbox cluster submit -- train all

clean:
	rm -rf target logs
