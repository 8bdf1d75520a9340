.PHONY: setup run test unit lint bench
setup:
	bash scripts/setup.sh
run:
	bash scripts/quickstart.sh
test:
	bash scripts/test.sh
unit: setup
	.venv/bin/python -m pytest -q tests/unit
lint: setup
	.venv/bin/ruff check hatoba tests bench
bench: setup
	.venv/bin/python bench/run_rm.py
