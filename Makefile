# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-erp bench-delivery bench-supply bench-mqtt clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml plugins/floorstream-mtconnect/pyproject.toml \
          plugins/floorstream-opcua/pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,mysql]'
	$(BIN)/python -m pip install --quiet -e plugins/floorstream-mtconnect
	$(BIN)/python -m pip install --quiet -e plugins/floorstream-opcua
	touch $(STAMP)

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[web]'
	$(BIN)/floorstream demo --serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples plugins
	PYTHONPATH=plugins/floorstream-example-plugin/src:plugins/floorstream-mtconnect/src:plugins/floorstream-opcua/src $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# three workers: the tests mostly wait (on services, subprocesses, sentinels), and each has its
# own database and topic prefix, so they run side by side; PYTEST_WORKERS=0 runs them in one process
PYTEST_WORKERS ?= 3

pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

test: lint typecheck pytest

# the mqtt fast path on the oldest paho-mqtt of the pin, in a throw-away venv (`make test`
# runs it too; the installed paho is the other end)
.PHONY: test-paho-floor
test-paho-floor: $(STAMP)
	$(BIN)/pytest -q tests/test_mqtt_paho_floor.py

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

bench-erp: $(STAMP)
	$(BIN)/python bench/erp.py

bench-delivery: $(STAMP)
	$(BIN)/python bench/delivery.py --store sqlite
	$(BIN)/python bench/delivery.py --store postgres

bench-supply: $(STAMP)
	$(BIN)/python bench/supply.py

bench-mqtt: $(STAMP)
	$(BIN)/python bench/mqtt.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
