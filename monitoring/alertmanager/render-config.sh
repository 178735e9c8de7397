#!/bin/sh
# Renders the Alertmanager configuration from the environment:
#
#   render-config.sh SOURCE_DIR TARGET_DIR
#
# writes SOURCE_DIR/alertmanager.yml and SOURCE_DIR/templates/*.tmpl to TARGET_DIR with each
# ${NAME} replaced by that variable's value, and the two secrets to TARGET_DIR/secrets/ (mode 600):
# no secret is in the repository or in the rendered configuration. A variable that is unset or
# blank stops it with a message naming every such variable. POSIX sh and awk (busybox is enough).
set -eu
usage='usage: render-config.sh SOURCE_DIR TARGET_DIR'
src=${1:?$usage}
dst=${2:?$usage}

# Substituted into the files; the secrets are not on this list, so they can only reach files.
settings='ALERT_SLACK_CHANNEL_CRITICAL ALERT_SLACK_CHANNEL_WARNING ALERT_EMAIL_TO ALERT_EMAIL_FROM ALERT_SMTP_SMARTHOST ALERT_SMTP_USERNAME RUNBOOK_BASE_URL ALERT_WATCHDOG_URL'
secrets='ALERT_SLACK_WEBHOOK_URL ALERT_SMTP_PASSWORD'

missing=''
for name in $settings $secrets; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "alertmanager: set these variables (see .env.example):$missing" >&2
  exit 1
fi

umask 077
mkdir -p "$dst/templates" "$dst/secrets"
printf '%s' "$ALERT_SLACK_WEBHOOK_URL" >"$dst/secrets/slack_webhook_url"
printf '%s' "$ALERT_SMTP_PASSWORD" >"$dst/secrets/smtp_password"
SECRETS_DIR=$(cd "$dst/secrets" && pwd)
export SECRETS_DIR

render() {
  awk -v names="SECRETS_DIR $settings" '
    BEGIN { n = split(names, list, " "); for (i = 1; i <= n; i++) allowed[list[i]] = 1 }
    {
      line = $0; out = ""
      while (match(line, /\$\{[A-Za-z_][A-Za-z0-9_]*\}/)) {
        name = substr(line, RSTART + 2, RLENGTH - 3)
        if (!(name in allowed)) {
          print "alertmanager: " FILENAME " uses ${" name "}, which is not a setting render-config.sh fills in" > "/dev/stderr"
          exit 2
        }
        out = out substr(line, 1, RSTART - 1) ENVIRON[name]
        line = substr(line, RSTART + RLENGTH)
      }
      print out line
    }' "$1" >"$2"
}

render "$src/alertmanager.yml" "$dst/alertmanager.yml"
for template in "$src"/templates/*.tmpl; do
  render "$template" "$dst/templates/$(basename "$template")"
done
echo "alertmanager: configuration rendered to $dst"
