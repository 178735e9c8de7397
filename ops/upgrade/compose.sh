# The rolling upgrade's platform for docker-compose (ops/rolling-upgrade.sh sources it). Run from
# the folder holding docker-compose.yml, after building or pulling the new image (QCAT_IMAGE_TAG).
# During the upgrade nginx's upstream (ops/nginx/upstream/qcat.conf, mounted into nginx) lists the
# replicas' addresses one by one; at the end the file is put back as it was (`server qcat:8082`,
# which resolves to every replica when nginx reloads).
# shellcheck shell=bash

compose() { docker-compose "$@"; }
upstream_file="ops/nginx/upstream/qcat.conf"
upstream_saved="$(cat "$upstream_file")"

# The replica's address on the network nginx shares with it (the compose network `front`).
address_of() {
  docker inspect -f '{{range $name, $net := .NetworkSettings.Networks}}{{$name}} {{$net.IPAddress}}{{"\n"}}{{end}}' "$1" |
    awk '$1 ~ /_front$/ { print $2 ":8082"; exit }'
}

list_replicas() {
  local id
  for id in $(compose ps -q qcat); do
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = "true" ] && echo "$id $(address_of "$id")"
  done
}

# One more replica of the service, with the image QCAT_IMAGE_TAG names now; the others are kept.
start_replica() {
  local before after id count
  before="$(compose ps -q qcat | sort)"
  count="$(printf '%s\n' "$before" | grep -c . || true)"
  compose up -d --no-deps --no-recreate --scale "qcat=$((count + 1))" qcat >&2
  after="$(compose ps -q qcat | sort)"
  id="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | head -1)"
  echo "$id $(address_of "$id")"
}

replica_ready() {
  docker exec "$1" node -e "fetch('http://127.0.0.1:8082/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" 2>/dev/null
}

stop_replica() {
  docker stop -t 30 "$1" >/dev/null && docker rm "$1" >/dev/null
}

write_upstream() {
  local address servers=""
  for address in "$@"; do servers="$servers    server $address max_fails=3 fail_timeout=10s;\n"; done
  printf '# Written by ops/rolling-upgrade.sh during an upgrade; put back when it ends.\nupstream qcat {\n    least_conn;\n%b    keepalive 32;\n}\n' "$servers" >"$upstream_file"
}

reload_nginx() {
  compose exec -T nginx nginx -s reload
}

finish_upstream() {
  printf '%s\n' "$upstream_saved" >"$upstream_file"
}
