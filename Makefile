# Envelope — the two commands a newcomer needs:
#   make run    install, load the demo and serve it on http://127.0.0.1:8000 (SQLite, in-memory layer)
#   make test   install and run the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install lint bench bench-standings bench-fanout bench-live clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

install: $(STAMP)

# Development server on the embedded default: DEBUG on, SQLite, in-memory channel layer.
run: export DEBUG ?= 1
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo --base-url http://$(HOST):$(PORT)
	@echo ""
	@echo "Envelope is starting at http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The whole suite. With DATABASE_URL / REDIS_URL set it runs on PostgreSQL and Redis.
test: $(STAMP)
	$(BIN)/ruff check .
	DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: bench-standings bench-fanout bench-live

bench-standings: $(STAMP)
	$(BIN)/python bench/standings.py

bench-fanout: $(STAMP)
	$(BIN)/python bench/fanout.py

# The live page applying a 1,000-player leaderboard:update, timed in Chromium.
bench-live: $(STAMP)
	$(BIN)/pytest tests/browser/test_live_board.py -k 1000_player -s -q

clean:
	rm -rf $(VENV) db.sqlite3 test-artifacts
