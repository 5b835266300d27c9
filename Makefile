# Shortcuts; each target is one of the scripts in scripts/ (usable without make).
.PHONY: install run demo stop status login test lint bench mutation camoufox

install:        ## venv, Python deps, Chromium if missing
	bash scripts/install.sh
run demo:       ## start the service (demo mode until a Google login is saved)
	bash scripts/run.sh
stop:           ## stop every program and supervisord
	bash scripts/stop.sh
status:
	.venv/bin/supervisorctl -c supervisord.conf status
login:          ## sign in to Google in a headed browser and save the login (needs a display)
	bash scripts/install.sh && .venv/bin/python -m browser_worker login $(if $(NAME),--name $(NAME),)
test:           ## install and run the whole test suite (what CI runs)
	bash scripts/test.sh
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
bench:          ## start the demo stack and print the benchmark table
	bash scripts/install.sh && .venv/bin/python -m bench
mutation:       ## mutation testing of the pure modules (slow; before a release, not in CI): docs/mutation.md
	bash scripts/mutation.sh
camoufox:       ## optional: download Camoufox's browser (needs internet access to its release host)
	.venv/bin/python -m camoufox fetch && .venv/bin/python -c 'from shared.browsers import camoufox_installed as c; import sys; sys.exit(0 if c() else 1)' \
	  || { echo "Camoufox's browser is not installed; BROWSER=auto keeps using Chromium"; exit 1; }
