# partypoints: `make run` for a demo on 127.0.0.1:8000, `make test` for the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	mkdir -p data
	$(BIN)/alembic upgrade head
	$(BIN)/partypoints demo seed
	$(BIN)/partypoints serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/ruff check .
	scripts/ensure_chromium.sh
	$(BIN)/pytest $(PYTEST_ARGS)

# Lint rules only: the code is wrapped by hand at 100 columns, not by `ruff format`.
lint: install
	$(BIN)/ruff check .

# Month close and branch boards against plain-SQL ceilings: 100k members on a scratch PostgreSQL
# database (needs a server on 127.0.0.1:5432), then 10k members on SQLite; then /我的积分 over
# signed DingTalk callbacks against the server's /healthz (PostgreSQL). One JSON line each.
# Then a 2,000-member check-in burst against /healthz, on PostgreSQL and on SQLite.
# Then a fan-out of 40 posts to each of 5,000 groups, each through its own custom robot, against
# the fake DingTalk's 20-a-minute limit, on SQLite and on PostgreSQL.
bench: install
	$(BIN)/python benchmarks/month_close.py --pg
	$(BIN)/python benchmarks/month_close.py
	$(BIN)/python benchmarks/chat_latency.py
	$(BIN)/python benchmarks/checkin_burst.py --pg
	$(BIN)/python benchmarks/checkin_burst.py --sqlite
	$(BIN)/python benchmarks/fanout.py
	$(BIN)/python benchmarks/fanout.py --pg

clean:
	rm -rf $(VENV) data .pytest_cache
