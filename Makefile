# The README's two commands. Both create/update .venv from constraints.txt (exact tested versions) and
# skip the install when pyproject.toml and constraints.txt are unchanged since the last one.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.localctrl-installed
export HF_HUB_OFFLINE ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: demo test install readme clean-venv

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --upgrade pip
	$(BIN)/python -m pip install --constraint constraints.txt --editable ".[test]"
	touch $@

# The main job on the embedded default: benchmark the five methods on the shapes world, then the paper report.
demo: $(INSTALLED)
	$(BIN)/localctrl doctor
	$(BIN)/localctrl bench --suite shapes-quick
	$(BIN)/localctrl report --suite shapes-quick

# The README's shapes-quick table and figure from a run of this commit: a fresh store and adapter cache, so nothing is
# reused from earlier code; `localctrl report --doc` rewrites only the block between the README's markers.
READMERUN := localctrl-runs/readme
readme: $(INSTALLED)
	rm -rf $(READMERUN)
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/$(READMERUN)/mlflow.db $(BIN)/localctrl bench --suite shapes-quick \
		--out $(READMERUN)/bench --cache $(READMERUN)/cache
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/$(READMERUN)/mlflow.db $(BIN)/localctrl report --suite shapes-quick \
		--out $(READMERUN)/report --doc README.md

test: $(INSTALLED)
	scripts/install_chromium.sh
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
