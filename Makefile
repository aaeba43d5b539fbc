# Two commands for a newcomer: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install migrate seed lint bench synthea-set clean

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --no-input

seed: migrate
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo

# Web server and django-q2 cluster together; Ctrl-C stops both.
run: seed
	@echo ""
	@echo "CareHub admin: http://$(HOST):$(PORT)/admin/"
	@echo "Sign in as agent, supervisor, coordinator, auditor or admin (organization 1)"
	@echo "or agent2, supervisor2, coordinator2, auditor2, admin2 (organization 2);"
	@echo "password: $${CAREHUB_DEMO_PASSWORD:-carehub-demo}; the code (second factor), in another terminal:"
	@echo "  DEBUG=true $(PY) manage.py demo_otp agent"
	@echo ""
	@# The cluster is stopped by its pid (SIGINT, as Ctrl-C gives it) and waited for: `kill 0` in a
	@# trap signalled the shell itself, re-entering the trap until sh overflowed its stack
	@# ("Segmentation fault").
	@DEBUG=$${DEBUG:-true} $(PY) manage.py qcluster & cluster=$$!; \
	trap 'kill -INT $$cluster 2>/dev/null; wait $$cluster' EXIT; trap 'exit 0' INT TERM; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py runserver $(HOST):$(PORT) --noreload

test: install
	DEBUG=true $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	DEBUG=true $(PY) -m bench $(BENCH)

# A Synthea export for the import benchmark (BENCH_IMPORT_DIR=var/synthea/fhir): PySynthea in a
# virtualenv of its own, fixed seed, so every machine generates the same patients.
SYNTHEA_PATIENTS ?= 20
synthea-set:
	test -x var/synthea-venv/bin/synthea || { $(PYTHON) -m venv var/synthea-venv && \
		var/synthea-venv/bin/pip install --quiet -r bench/synthea-requirements.txt; }
	rm -rf var/synthea
	var/synthea-venv/bin/synthea -s 7 -p $(SYNTHEA_PATIENTS) -o var/synthea --log-level warning

clean:
	rm -rf $(VENV) db.sqlite3 var
