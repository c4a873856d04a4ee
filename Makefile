# The two commands: `make deploy` (the stack, on inventories/local by default) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0
INVENTORY ?= inventories/local/hosts.yml
MOLECULE_SCENARIOS ?= default check

.PHONY: deploy test demo demo-destroy setup collection-link images lint sanity \
        unit differential functional molecule integration bench clean

## deploy: converge the stack on $(INVENTORY) (./deploy prepares the controller first)
deploy:
	INVENTORY=$(INVENTORY) ./deploy

## test: everything CI runs, from a fresh machine
test: setup collection-link lint unit differential images integration

## demo: deploy the stack into a disposable local test VM (needs only Docker)
demo: setup collection-link images
	molecule converge -s demo
	@echo "The demo VM is aicost-demo-vm1: docker exec -it aicost-demo-vm1 bash, then"
	@echo "curl localhost:9090/api/v1/targets. Remove it with: make demo-destroy"

demo-destroy:
	molecule destroy -s demo

setup:
	tests/harness/setup-host.sh

collection-link:
	@mkdir -p .cache/collections/ansible_collections/aicost
	@ln -sfn $(CURDIR) .cache/collections/ansible_collections/aicost/monitoring

images:
	tests/images/build.sh

lint:
	yamllint --strict .
	ansible-lint --nocolor
	ruff check .

sanity:
	tests/harness/sanity.sh

unit:
	pytest -q -n 2 tests/unit
	cd app && pytest -q -m 'not integration'

## differential: the app's prices against LiteLLM's own cost functions, in .venv-litellm
differential:
	tests/harness/litellm-venv.sh
	cd app && LITELLM_LOCAL_MODEL_COST_MAP=True ../.venv-litellm/bin/pytest -q -o addopts= \
	  tests/differential

## functional: two workers, one test file each at a time (the files share module fixtures)
functional:
	pytest -q -n 2 --dist loadfile tests/functional
	cd app && pytest -q -m integration

## integration: the molecule scenarios beside the functional tests then sanity (their output
## is kept in .cache/functional-sanity.log and printed at the end)
integration:
	tests/harness/side-by-side.sh .cache/functional-sanity.log \
	  "$(MAKE) --no-print-directory functional sanity" $(MAKE) --no-print-directory molecule

## molecule: each scenario's log is kept in .cache; a failure's tasks are printed again last
molecule:
	for scenario in $(MOLECULE_SCENARIOS); do \
	  molecule test -s $$scenario 2>&1 | tee .cache/molecule-$$scenario.log \
	    || { tests/harness/failed-tasks.sh .cache/molecule-$$scenario.log; exit 1; }; \
	done

bench: setup collection-link images
	python benchmarks/app.py
	python benchmarks/ingest_stages.py
	python benchmarks/pricing.py
	python benchmarks/timescaledb_modules.py
	python benchmarks/dashboards_sql.py
	python benchmarks/rollout.py

clean:
	-molecule destroy -s default; molecule destroy -s check; molecule destroy -s demo
	rm -rf .cache /tmp/aicost-sanity
