# Set-up is part of every target: the first run makes .venv and installs the project into it.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
COLLECTION ?= C2036881735-POCLOUD
CHECK_ARGS ?=
PYTEST_ARGS ?=

SURVEY_ARGS ?=

.PHONY: survey demo check test lint bench reliability clean

$(BIN)/titiler-cmr-compat: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[survey,test]'
	touch $@

## The survey: every EOSDIS collection with granules, on this machine (Lithops localhost, ./survey-output).
survey: $(BIN)/titiler-cmr-compat
	$(BIN)/titiler-cmr-compat survey run $(SURVEY_ARGS)

## The whole survey offline on sample data served on 127.0.0.1 (about a minute).
demo: $(BIN)/titiler-cmr-compat
	$(BIN)/titiler-cmr-compat demo

## Check one collection against CMR (needs network; Earthdata credentials from EARTHDATA_TOKEN or
## EARTHDATA_USERNAME/EARTHDATA_PASSWORD for protected data).
check: $(BIN)/titiler-cmr-compat
	$(BIN)/titiler-cmr-compat check --collection-id $(COLLECTION) $(CHECK_ARGS)

## The test suite: offline, real files and local servers (about 10 minutes on 2 cores, after a ~2 minute install).
test: $(BIN)/titiler-cmr-compat
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint the SAM template: cfn-lint, `sam validate --lint` and checkov, offline. The linters pin many
## dependencies, so each gets its own virtualenv under .tools/ (made on first use: 1.5-2.5 minutes).
TOOLS := .tools
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
LINT_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-west-2

$(TOOLS)/sam/bin/sam:
	rm -rf $(TOOLS)/sam
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(TOOLS)/checkov/bin/checkov:
	rm -rf $(TOOLS)/checkov
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

lint: $(TOOLS)/sam/bin/sam $(TOOLS)/checkov/bin/checkov
	$(LINT_ENV) $(TOOLS)/sam/bin/cfn-lint template.yaml
	$(LINT_ENV) $(TOOLS)/sam/bin/sam validate --lint --template template.yaml
	$(LINT_ENV) $(TOOLS)/checkov/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

## Benchmarks that print numbers (bytes read, requests, seconds, peak memory).
bench: $(BIN)/titiler-cmr-compat
	$(BIN)/python bench/check.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/survey.py
	$(BIN)/python bench/report.py

## Hostile hosts, files and records: a table per class of cases, wall time, peak RSS, secrets found
## and results lost (about 3 minutes).
reliability: $(BIN)/titiler-cmr-compat
	$(BIN)/python bench/reliability.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
