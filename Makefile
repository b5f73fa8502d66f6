# The README's two commands. Both create/update .venv from constraints.txt (exact tested versions) and
# skip the install when pyproject.toml and constraints.txt are unchanged since the last one.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.localctrl-installed
export HF_HUB_OFFLINE ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: demo test install clean-venv

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

test: $(INSTALLED)
	scripts/install_chromium.sh
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
