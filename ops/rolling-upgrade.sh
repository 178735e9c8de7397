#!/usr/bin/env bash
# Rolling upgrade of the QCAT replicas behind nginx: one replica at a time, keeping their number.
# For each old replica: start a new one beside it, wait until it is ready (GET /health/ready), put
# it in nginx's upstream in the old one's place and reload nginx, let nginx's old workers finish
# what they sent to the old replica, then stop it (SIGTERM: QCAT drains its requests). A new
# replica that is not ready in time is removed and the upgrade stops, rolled back to the replicas
# that were serving (exit 1). docs/deployment.md, "Upgrades", explains when to use it.
#
#   docker-compose build qcat && docker-compose run --rm migrate && ops/rolling-upgrade.sh
#   ops/rolling-upgrade.sh --platform FILE     # another platform (the test's runs native processes)
#
# A platform is a bash file defining: list_replicas (one "ID ADDRESS" line per serving replica),
# start_replica (starts one with the new version; prints "ID ADDRESS"), replica_ready ID ADDRESS,
# stop_replica ID, write_upstream ADDRESS..., reload_nginx, finish_upstream. The default is
# ops/upgrade/compose.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
platform="$here/upgrade/compose.sh"
if [ "${1:-}" = "--platform" ]; then
  platform="${2:?--platform needs a file}"
fi
# shellcheck source=ops/upgrade/compose.sh
. "$platform"

ready_timeout="${QCAT_UPGRADE_READY_TIMEOUT:-180}"
drain_seconds="${QCAT_UPGRADE_DRAIN_SECONDS:-5}"
say() { printf 'rolling upgrade: %s\n' "$*" >&2; }

mapfile -t old < <(list_replicas)
if [ "${#old[@]}" -eq 0 ]; then
  say "no replica is running: nothing to upgrade (start them with docker-compose up -d)"
  exit 1
fi
serving=()
for entry in "${old[@]}"; do serving+=("${entry#* }"); done
say "${#old[@]} replica(s): ${serving[*]}"

for entry in "${old[@]}"; do
  old_id="${entry%% *}"
  old_address="${entry#* }"
  read -r new_id new_address < <(start_replica)
  say "started $new_id at $new_address to replace $old_id at $old_address"
  deadline=$(($(date +%s) + ready_timeout))
  until replica_ready "$new_id" "$new_address"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "$new_id is not ready after ${ready_timeout} s: removing it and rolling back"
      stop_replica "$new_id" || true
      write_upstream "${serving[@]}"
      finish_upstream
      reload_nginx
      say "rolled back: nginx sends to ${serving[*]}; $old_id and the replicas not yet replaced keep serving"
      exit 1
    fi
    sleep 1
  done
  next=()
  for address in "${serving[@]}"; do
    if [ "$address" = "$old_address" ]; then next+=("$new_address"); else next+=("$address"); fi
  done
  write_upstream "${next[@]}"
  reload_nginx
  serving=("${next[@]}")
  # nginx's previous workers finish the requests they already sent to the old replica.
  sleep "$drain_seconds"
  stop_replica "$old_id"
  say "replaced $old_id by $new_id"
done

finish_upstream
reload_nginx
say "done: ${#serving[@]} replica(s) upgraded, one at a time"
