#!/usr/bin/env bash
# Install the Debian packages the integration tests need (Dovecot, GnuPG, PostgreSQL, OpenSSL,
# Postfix for the MTA tests of docs/postfix.md, Chromium for the HTML report's test).
#
#   bash scripts/install-system-deps.sh
#
# Idempotent and quiet when everything is present (only file tests, no apt/dpkg calls).
# As root: installs what is missing (apt-get update only when something is missing).
# Not root: prints the install command; exits non-zero only when CI is set.
set -euo pipefail

have() {  # have BINARY [EXTRA_PATH...]: found on PATH or at one of the given paths
  local bin=$1
  shift
  command -v "$bin" >/dev/null 2>&1 && return 0
  local p
  for p in "$@"; do
    [[ -x $p ]] && return 0
  done
  return 1
}

have_initdb() {
  have initdb && return 0
  local p
  for p in /usr/lib/postgresql/*/bin/initdb; do
    [[ -x $p ]] && return 0
  done
  return 1
}

missing=()
# dovecot-imapd brings dovecot-core (the master) and the imap binary
if ! have dovecot /usr/sbin/dovecot || [[ ! -x /usr/lib/dovecot/imap ]]; then
  missing+=(dovecot-imapd)
fi
if ! have gpg /usr/bin/gpg || ! have gpgconf /usr/bin/gpgconf; then
  missing+=(gnupg)
fi
have_initdb || missing+=(postgresql-15)
have openssl /usr/bin/openssl || missing+=(openssl)
have postfix /usr/sbin/postfix || missing+=(postfix)
have systemd-analyze /usr/bin/systemd-analyze || missing+=(systemd)  # checks contrib/systemd
# headless Chromium renders the HTML report in tests/integration/test_report_html.py
have chromium /usr/bin/chromium || missing+=(chromium)

((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "mailgate tests need these Debian packages: ${missing[*]}" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
  [[ -n ${CI:-} ]] && exit 1
  exit 0
fi

echo "installing: ${missing[*]}" >&2
# postfix asks which setup it should write: none (the tests write their own main.cf)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}" >&2
