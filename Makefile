# make demo   set up .venv and watch the simulated arm learn to reach: the ROS 2 node graph
#             (sim, data collector, dynamics learner, MPC planner) over localhost DDS
# make test   set up .venv and run the test suite
# make bench  set up .venv, add the peers (bench-peers) and run the benchmarks
# make bench-peers  add the peers the benchmarks compare against: the bench extra
#             (stable-baselines3, sb3-contrib) and mbrl-lib's PETS (mbrl 0.2.0, whose own pins
#             would downgrade gymnasium: installed with --no-deps, with the hydra it needs)
# make lock   rewrite constraints.txt from the working .venv
#
# Set-up is idempotent: .venv is (re)built only when the requirement files change.
# With a ROS 2 distribution sourced (ROS_DISTRO set), its rclpy and messages are used
# and the PyPI ROS wheels are not installed.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

ifdef ROS_DISTRO
VENV_FLAGS := --system-site-packages
ROS_REQUIREMENTS :=
else
VENV_FLAGS :=
ROS_REQUIREMENTS := -r requirements-ros.txt
endif

# DDS stays on this machine, in a domain of its own.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 100 + 1 )))
export MUJOCO_GL ?= egl

PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: install demo test bench bench-peers lock clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-ros.txt constraints.txt setup.py setup.cfg
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@echo "installing pinned dependencies into $(VENV) ..."
	$(PIP) install -r requirements.txt $(ROS_REQUIREMENTS) -c constraints.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	rm -rf runs/demo  # learn from scratch each time (the nodes would resume the last run's data)
	$(BIN)/mbrl-control bringup sim --model gp --episodes 10 --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest

PEERS := $(VENV)/.peers

bench-peers: $(PEERS)

$(PEERS): $(STAMP)
	$(PIP) install stable-baselines3==2.9.2 sb3-contrib==2.9.2 -c constraints.txt  # setup.py's bench extra
	$(PIP) install --no-deps mbrl==0.2.0 hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 termcolor==3.3.0
	@touch $@

bench: $(STAMP) $(PEERS)
	$(BIN)/python benchmarks/sim_speed.py
	$(BIN)/python benchmarks/model_accuracy.py --json benchmarks/results/model_accuracy.json
	$(BIN)/python benchmarks/planning_rate.py --json benchmarks/results/planning_rate.json
	$(BIN)/python benchmarks/sample_efficiency.py --json benchmarks/results/sample_efficiency.json \
		--plot benchmarks/results/sample_efficiency.png
	$(BIN)/python benchmarks/policy_gradient.py --json benchmarks/results/policy_gradient.json \
		--plot benchmarks/results/policy_gradient.png
	$(BIN)/python benchmarks/model_based_policies.py --json benchmarks/results/model_based_policies.json
	$(BIN)/python benchmarks/control_loop.py --json benchmarks/results/control_loop.json
	$(BIN)/python benchmarks/fault_injection.py --json benchmarks/results/fault_injection.json
	$(BIN)/python benchmarks/gym_mbrl.py --json benchmarks/results/gym_mbrl.json --plot benchmarks/results/gym_mbrl.png

lock: $(STAMP)
	@{ echo "# Every package the install pulls in, pinned (pip freeze of a working .venv)."; \
	   echo "# Refresh: make lock."; \
	   $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
