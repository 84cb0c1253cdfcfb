# The two commands of the README:  `make up`  and  `make test`.
# Each creates its own virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests drive for real (broker, pseudo-terminal pairs, Dire Wolf TNC, PostgreSQL,
# CHIRP's own CSV driver and stock configurations).
SYSTEM_PACKAGES := mosquitto mosquitto-clients socat direwolf postgresql openssl \
	pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 sox espeak-ng ffmpeg faketime chirp

.PHONY: up test lint types system venv bench clean faults fuzz

up: $(BIN)/pttbridge
	$(BIN)/pttbridge up

test: system lint
	$(BIN)/pytest

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory types

# mypy over everything, then each conftest.py below tests/ on its own: they would all be module "conftest"
# in one run (pyproject.toml says why). No prerequisite: the pre-commit hook runs it with the .venv as it is.
types:
	$(BIN)/mypy
	@for f in $$(find tests -mindepth 2 -name conftest.py | sort); do \
	  echo "$(BIN)/mypy $$f"; $(BIN)/mypy "$$f" || exit 1; \
	done

# Installs what is missing of SYSTEM_PACKAGES (as root, or through sudo).
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(BIN)/pttbridge: $(BIN)/python setup.cfg
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/python setup.cfg
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# The fault-injection suite alone (it also runs in `make test`); its table goes to bench/out/faults.md.
faults: system $(VENV)/.test-deps
	$(BIN)/pytest tests/faults -q

# The peers the benchmarks run beside ours.
BENCH_PACKAGES := gpsd-clients multimon-ng dsdcc

bench: system $(VENV)/.test-deps
	@dpkg -s $(BENCH_PACKAGES) >/dev/null 2>&1 || $(MAKE) system SYSTEM_PACKAGES="$(BENCH_PACKAGES)"
	$(BIN)/python -m bench.serial_bench
	$(BIN)/python -m bench.bridge_bench
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.audio_bench
	$(BIN)/python -m bench.signalling_bench
	$(BIN)/python -m bench.channel_bench
	$(BIN)/python -m bench.gateway_audio_bench
	$(BIN)/python -m bench.scale_bench
	$(BIN)/python -m bench.camera_bench --out bench/out/cameras.md
	$(BIN)/python -m bench.voice_bench
	$(BIN)/python -m bench.report_bench
	$(BIN)/python -m bench.voice_latency_bench
	$(BIN)/python -m bench.dmr_bench
	$(BIN)/python -m bench.console_bench --seconds 600

# Every parser under atheris, one after the other (nice: it takes the cores it can get); the table
# goes to bench/out/fuzz.md. `make fuzz FUZZ_RUNS=20000 FUZZ_TIME=30` for a quick pass.
FUZZ_RUNS ?= 1000000
FUZZ_TIME ?= 300
fuzz: $(VENV)/.test-deps
	$(BIN)/pip install -q -e '.[fuzz]'
	nice -n 10 $(BIN)/python -m bench.fuzz --runs $(FUZZ_RUNS) --max-time $(FUZZ_TIME)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
