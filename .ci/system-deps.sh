#!/usr/bin/env bash
# Debian packages that the tests' real servers and browser need: PostgreSQL (Dagster's and
# MLflow's storage in the production rehearsal) and Chromium + ChromeDriver (the UI tests).
# Installs only what is missing. Where apt cannot run (not Debian, no root), it says so and the
# tests that need these skip with that reason; nothing else depends on them.
set -uo pipefail
PKGS=(postgresql chromium chromium-driver)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "system-deps: ${PKGS[*]} present"; exit 0; }
if ! command -v apt-get >/dev/null; then
  echo "system-deps: no apt-get; missing ${missing[*]} (the rehearsal and UI tests will skip)"; exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "system-deps: not root and no passwordless sudo; missing ${missing[*]} (the rehearsal and UI tests will skip)"; exit 0
  fi
fi
echo "system-deps: installing ${missing[*]} (apt, about 3 minutes)"
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
if $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # The Debian package starts a cluster on :5432 at install; the tests run their own clusters.
  $SUDO service postgresql stop >/dev/null 2>&1 || true
  echo "system-deps: installed in $(( $(date +%s) - start )) s"
else
  echo "system-deps: apt-get failed; missing ${missing[*]} (the rehearsal and UI tests will skip)"
fi
exit 0
