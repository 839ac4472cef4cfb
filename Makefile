# Expression Lab. The two set-up commands are `make demo` and `make test`; `make lab` opens the course.
VENV   ?= $(or $(EXPRESSION_LAB_VENV),.venv)
# scripts/bootstrap.sh installs into $EXPRESSION_LAB_VENV: the same folder the targets below run from
export EXPRESSION_LAB_VENV := $(VENV)
PY     := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test lint lab release bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap  ## the demo course run: release, a sample submission, autograde, feedback, grades
	@$(PY) -m course demo

TEST_JOBS ?= 2
test: bootstrap  ## the test suite on TEST_JOBS workers, whole files each (real-data tests run when FER2013_PATH is set)
	@$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: bootstrap  ## ruff's linter and formatter, configured in pyproject.toml (CI runs it before the tests)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

lab: bootstrap  ## JupyterLab on the course folder
	@$(VENV)/bin/jupyter lab --notebook-dir=.

release: bootstrap  ## regenerate assignments/ from solutions/
	@$(PY) -m course release

clean:  ## remove grading state (gradebook, submissions, feedback); keeps .venv and data/
	rm -rf grading .nbgrader.log
