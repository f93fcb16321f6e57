# posepipe: `make demo` runs the main job on real sample media; `make test` runs the test suite.
# Both set everything up first on a fresh machine (virtual environment, model asset, sample media).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-output
export MPLBACKEND := Agg
export GLOG_minloglevel := 2
export TF_CPP_MIN_LOG_LEVEL := 2
# Node 20 works for the CDK; its end-of-life banner would print on every jsii call.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK_OUT ?= cdk.out

NODE_STAMP := node_modules/.installed

.PHONY: all setup model samples node browser demo test test-fast lint format clean bench synth screenshots

all: test

$(STAMP): requirements.lock requirements-peers.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "posepipe needs $(PYTHON) (set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-peers.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Node tools (asl-validator, the AWS CDK CLI), pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "posepipe's checks need Node.js and npm"; exit 2; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node: $(NODE_STAMP)

# Debian's Chromium, which the browser tests drive with Playwright (it never downloads a browser).
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		command -v apt-get >/dev/null || { echo "the browser tests need Chromium at $(CHROMIUM) (Debian's chromium package)"; exit 2; }; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		echo "installing Debian's chromium for the browser tests"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi
	@echo "browser tests use $$("$(CHROMIUM)" --version 2>/dev/null) at $(CHROMIUM)"

model: $(STAMP)
	$(BIN)/posepipe models build

samples: $(STAMP)
	$(BIN)/posepipe samples fetch

demo: model samples
	$(BIN)/posepipe video "$$($(BIN)/posepipe samples path vtest.avi)" -o $(DEMO_OUT) --analyze
	$(BIN)/posepipe image "$$($(BIN)/posepipe samples path messi5.jpg)" "$$($(BIN)/posepipe samples path basketball1.png)" -o $(DEMO_OUT)/images
	@echo "demo results: $(DEMO_OUT)/vtest/ (keypoints.json, annotated.mp4, summary.json; the motion analysis: angles.csv, keypoints.csv, analysis.json, person_<id>/ with OpenSim, C3D and plot files) and $(DEMO_OUT)/images/"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: model samples node browser lint
	$(BIN)/pytest

# Day to day: lint, then the tests that need no browser, no local stack and no PyTorch and are not
# slow (markers in pyproject.toml). `make test` runs every test.
FAST_TESTS := not slow and not stack and not torch and not browser
test-fast: model samples lint
	$(BIN)/pytest -m "$(FAST_TESTS)"

# `cdk synth` offline, no AWS account and no Docker needed (docs/DEPLOY.md): the CDK app with
# cdk-nag's AwsSolutions checks, then cfn-lint on the templates. Context: make synth CDK_ARGS="-c apiAuth=apikey".
# The endpoint's models packed into one archive (posepipe models pack: the detector, the pose model
# and MoveNet, with their sha256 sums): upload it and deploy with -c modelUri=s3://.../model.tar.gz
# (docs/DEPLOY.md); without modelUri the endpoint serves the same models built into its image.
MODEL_ARCHIVE ?= $(CDK_OUT)-models/model.tar.gz
synth: setup node model
	$(BIN)/posepipe models pack -o $(MODEL_ARCHIVE)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx --no-install cdk synth --quiet --output $(CDK_OUT) $(CDK_ARGS)
	$(BIN)/cfn-lint $(CDK_OUT)/*.template.json
	@echo "synthesized: $(CDK_OUT)/ (templates, assets, cdk-nag: no unacknowledged findings); the endpoint's model archive: $(MODEL_ARCHIVE)"

# The README's pictures of the web app (docs/images/ui-*.png), taken in headless Chromium.
screenshots: model samples browser
	$(BIN)/python docs/screenshots.py

bench: model samples
	$(BIN)/python bench/video_throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(CDK_OUT) $(CDK_OUT)-models node_modules .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
