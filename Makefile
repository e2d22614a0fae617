# The project's commands (see README.md). Every target that runs code creates .venv/ first
# from the pinned lock, so a fresh clone needs only python3.11 and make.
SHELL := /bin/bash
comma := ,

# Variables that recipes use come from the make command line (`make dags-test DATE=2026-11-02`) or the defaults
# below, never from an environment variable of the same name (a stray `DATE` in the environment is ignored). Their
# raw text is checked before any recipe runs, and recipes pass them to the shell single-quoted.
# $(call shq,TEXT): TEXT as one single-quoted shell word.
shq = '$(subst ','\'',$(1))'
# $(call make_var,NAME,DEFAULT,REGEX,WHAT): NAME's raw command-line text (never expanded by make) or DEFAULT;
# make stops with a clear message unless the whole value matches REGEX (bash =~).
define make_var
ifeq ($$(origin $(1)),command line)
override $(1) := $$(value $(1))
else
override $(1) := $(2)
endif
unexport $(1)
ifneq ($$(shell [[ $$(call shq,$$($(1))) =~ ^($(3))$$$$ ]] && echo ok),ok)
$$(error $(1) must be $(4); got $$(call shq,$$($(1))))
endif
endef
$(eval $(call make_var,DATE,2026-11-01,[0-9]{4}-[0-9]{2}-[0-9]{2},a day as YYYY-MM-DD (make dags-test DATE=2026-11-02)))
$(eval $(call make_var,TEST_WORKERS,auto,auto|[0-9]+,auto or a number of test processes (make test TEST_WORKERS=2)))
$(eval $(call make_var,PORT,,[0-9]*,a TCP port number (make airflow PORT=8090)))
$(eval $(call make_var,PYTHON,python3.11,[A-Za-z0-9._/+-]+,a Python command name or path (letters$(comma) digits$(comma) ._/+-)))

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export LAKEHOUSE_DATA_DIR ?= $(CURDIR)/data

.PHONY: venv test test-unit lint demo dags-test airflow docs clean lock chromium postgresql bench bench-large

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(call shq,$(PYTHON)) -m venv $(VENV)
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --default-pip >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The newcomer test (tests/e2e/test_first_hour.py) drives Debian's headless Chromium; a fresh machine gets it here.
CHROMIUM := /usr/bin/chromium
chromium: $(CHROMIUM)

$(CHROMIUM):
	@echo "installing chromium (Debian package) for the browser e2e test"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null

# The BI publish tests (tests/integration/test_publish_bi.py) start a throw-away cluster from Debian's PostgreSQL
# binaries (/usr/lib/postgresql/<version>/bin); a fresh machine gets them here.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing postgresql (Debian package) for the BI publish tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi

# Tests run on every core (pytest-xdist), a module's tests on one worker, so what a module builds once is built once. `make test TEST_WORKERS=0` runs them in this process, one after another.
PYTEST_XDIST = -n $(call shq,$(TEST_WORKERS)) --dist loadscope

test: venv $(CHROMIUM) postgresql
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_XDIST) --durations=15

# The unit tests alone (no server, no Airflow run, no browser): well under a minute.
test-unit: venv
	$(BIN)/python -m pytest $(PYTEST_XDIST) tests/unit

demo: venv
	$(BIN)/lakehouse demo --date $(call shq,$(DATE))

dags-test: venv
	$(BIN)/lakehouse dags-test --date $(call shq,$(DATE))

# PORT= picks the port of the Airflow UI (default 8080) and of the dbt docs server (default 8081).
airflow: venv
	$(BIN)/lakehouse airflow $(if $(PORT),--port $(call shq,$(PORT)))

docs: venv
	$(BIN)/lakehouse docs --serve $(if $(PORT),--port $(call shq,$(PORT)))

# Throughput, memory and build-time figures against the targets (bench/run.py; data in .bench/).
bench: venv
	$(BIN)/python -m bench.run

bench-large: venv
	$(BIN)/python -m bench.run --large

lock:
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.txt

clean:
	rm -rf $(VENV) .airflow dbt_project/target dbt_project/logs
