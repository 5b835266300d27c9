#!/usr/bin/env bash
# Install what is missing and start aistudio-proxy under supervisord.
# With no Google login saved (auth_profiles/active/*.json, or AUTH_PROFILE), it starts in DEMO mode
# against the bundled AI Studio simulator, so it works offline. Stop with scripts/stop.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
CTL=(.venv/bin/supervisorctl -c supervisord.conf)

if [ -S run/supervisor.sock ] && "${CTL[@]}" pid >/dev/null 2>&1; then
  say "already running:"; "${CTL[@]}" status || true
  echo "Stop it first with: scripts/stop.sh"; exit 0
fi

# Real mode when a login exists, demo mode otherwise.
profile=${AUTH_PROFILE:-}
if [ -z "$profile" ]; then
  profile=$(ls auth_profiles/active/*.json 2>/dev/null | sort | head -n1 || true)
fi
if [ -n "$profile" ] && [ -z "${AISTUDIO_RESOLVE:-}" ]; then
  mode=real
  say "real mode: using the Google login in $profile"
else
  mode=demo
  sim=127.0.0.1:${SIM_PORT:-9443}
  export AISTUDIO_RESOLVE="aistudio.google.com=$sim,alkalimakersuite-pa.clients6.google.com=$sim,accounts.google.com=$sim"
  mkdir -p sim_state && chmod 700 sim_state
  demo_accounts=$(.venv/bin/python -c 'from shared.settings import load_settings as l; print(l().demo_accounts)')
  # One login per demo account (DEMO_ACCOUNTS, default 1), made again at each start, in the pool's folder, so
  # an account added from the dashboard joins the pool (and stays there across restarts).
  export AUTH_PROFILE="" AUTH_PROFILES_DIR="sim_state/demo_auth"
  mkdir -p sim_state/demo_auth/active && chmod 700 sim_state/demo_auth sim_state/demo_auth/active
  rm -f sim_state/demo_auth/active/demo.json sim_state/demo_auth/active/demo[0-9]*.json
  .venv/bin/python -m aistudio_sim demo-profile sim_state/demo_auth/active --accounts "$demo_accounts" --state-dir sim_state >/dev/null
  say "demo mode: no Google login saved, answering from the bundled AI Studio simulator (run 'make login' for real mode)"
fi

# The dashboard and the admin routes need ADMIN_KEY: without one in the environment or .env, one is made once
# (data/admin_key, 0600) and used.
admin_key_file=""
if [ -z "$(.venv/bin/python -c 'from shared.settings import load_settings as l; print(l().admin_key or "")')" ]; then
  admin_key_file=data/admin_key
  if [ ! -s "$admin_key_file" ]; then
    mkdir -p data && chmod 700 data
    (umask 077; .venv/bin/python -c 'import secrets; print("adm-" + secrets.token_urlsafe(24))' > "$admin_key_file")
  fi
  ADMIN_KEY=$(cat "$admin_key_file"); export ADMIN_KEY
fi

read -r api_host api_port < <(.venv/bin/python -c 'from shared.settings import load_settings as l; s=l(); print(s.api_host, s.api_port)')
.venv/bin/supervisord -c supervisord.conf
[ "$mode" = demo ] && "${CTL[@]}" start simulator >/dev/null

say "waiting for http://$api_host:$api_port/health ..."
ok=""
for _ in $(seq 1 180); do
  if curl -fsS -o /dev/null "http://$api_host:$api_port/health" 2>/dev/null; then ok=1; break; fi
  sleep 1
done
"${CTL[@]}" status || true
if [ -z "$ok" ]; then
  echo
  echo "The service did not become healthy within 3 minutes. What it says:"
  curl -sS "http://$api_host:$api_port/health" 2>/dev/null || echo "(the API does not answer)"
  echo; echo "Logs: logs/*.log and logs/*.out; stop with scripts/stop.sh"
  exit 1
fi
model=$(curl -fsS "http://$api_host:$api_port/v1/models" | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d[0]["id"] if d else "")')
cat <<MSG

aistudio-proxy is up ($mode mode): OpenAI-compatible API at http://$api_host:$api_port/v1

  curl http://$api_host:$api_port/v1/chat/completions \\
    -H 'Content-Type: application/json' \\
    -d '{"model": "$model", "messages": [{"role": "user", "content": "Hello!"}]}'

Status: .venv/bin/supervisorctl -c supervisord.conf status      Stop: scripts/stop.sh
MSG
if [ -n "$admin_key_file" ]; then
  echo "Dashboard: open http://$api_host:$api_port/dashboard (admin key: cat $admin_key_file)"
else
  echo "Dashboard: open http://$api_host:$api_port/dashboard (admin key: your ADMIN_KEY)"
fi
