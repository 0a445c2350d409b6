# OpenITB: the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-deps soak system-deps a11y-deps supply-chain clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# Debian packages for the browser tests. Installed when we are root (CI, the dev machines);
# elsewhere the browser tests skip and say why.
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian$$missing for the browser, PDF and a11y tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "could not install$$missing: browser/PDF tests will skip (or fail under CI=true)"; \
	else echo "missing$$missing and not root: those tests will skip"; fi

# axe-core from npm for the accessibility tests (kept under build/, which git ignores).
AXE_JS := build/node/node_modules/axe-core/axe.min.js
a11y-deps: system-deps
	@if [ -f $(AXE_JS) ]; then :; \
	elif command -v npm >/dev/null; then \
		npm install --silent --no-save --no-audit --no-fund --prefix build/node axe-core@4.11.0 \
		|| echo "axe-core could not be installed: test_a11y will skip (or fail under CI=true)"; \
	else echo "no npm: test_a11y will skip (or fail under CI=true)"; fi

run: $(STAMP)
	$(BIN)/itb serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# The safety case reads this run's JUnit XML: every mitigated hazard's tests must have passed.
unit: $(STAMP)
	@mkdir -p build
	$(BIN)/pytest -n 2 -m "not slow" --junitxml=build/junit.xml
	$(BIN)/python -m tools.safety_case check build/junit.xml

# Supply chain: the SBOM of the locked environment must list every locked package; bandit on
# src/ fails on a medium or high finding; pip-audit fails on a known vulnerability and says
# visibly which packages its advisory source could not speak for (or that it was unreachable).
supply-chain: $(STAMP)
	@mkdir -p build
	$(BIN)/cyclonedx-py environment --of JSON -o build/sbom.cdx.json $(BIN)/python
	$(BIN)/python -m tools.supply_chain sbom build/sbom.cdx.json requirements.lock
	$(BIN)/bandit -q -c pyproject.toml -r src/itb --severity-level medium --confidence-level medium
	@timeout 300 $(BIN)/pip-audit -r requirements.lock --no-deps --progress-spinner off \
		--format json --output build/audit.json >/dev/null 2>build/audit.log \
		|| [ -s build/audit.json ] || rm -f build/audit.json
	$(BIN)/python -m tools.supply_chain audit build/audit.json

test: $(STAMP) system-deps a11y-deps lint typecheck supply-chain unit

# Debian wrk drives the clinic benchmark's server process; without it an httpx driver stands in.
bench-deps:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian wrk for the clinic benchmark"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
		|| echo "wrk could not be installed: bench_clinic uses its httpx driver"; \
	else echo "no wrk and not root: bench_clinic uses its httpx driver"; fi

bench: $(STAMP) bench-deps
	$(BIN)/python -m bench

# Long runs: property tests with 20,000 examples, the slow-marked tests, and a million
# atheris inputs for each telemetry fuzz target.
soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest -n 2 -m "slow or not slow" tests/pump/test_properties.py
	$(BIN)/pytest -n 2 -m slow
	for target in codec session endpoint commit; do \
		$(BIN)/python -m tests.telemetry.fuzz_atheris $$target -atheris_runs=1000000 || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
