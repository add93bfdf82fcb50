# The two commands a newcomer needs:
#   make demo   run the node on the shipped default model
#   make test   run the tests
# Both first bring up what is missing (scripts/setup_env.sh), and skip what is there.
SHELL := /bin/bash
ENV := . build/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup test demo clean

setup:
	@scripts/setup_env.sh

test: setup
	@$(ENV) python -m pytest $(PYTEST_ARGS) test

demo: setup
	@$(ENV) slarm demo

clean:
	rm -rf build out .pytest_cache
