#!/usr/bin/env bash
# Regenerate the TEST-ONLY fixture keys in this directory (see README.md).
# Run once by hand; the tests import the committed armored files and never call this.
#
#   tests/data/keys/generate.sh
#
# Needs gpg 2.2+. Everything happens in a throw-away GNUPGHOME under /tmp.
set -euo pipefail

out=$(cd "$(dirname "$0")" && pwd)
home=$(mktemp -d /tmp/mg-keygen.XXXXXX)
chmod 700 "$home"
echo "allow-loopback-pinentry" >"$home/gpg-agent.conf"
trap 'gpgconf --homedir "$home" --kill all 2>/dev/null || true; rm -rf "$home"' EXIT
ALGO_ECC="Key-Type: EDDSA
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ECDH
Subkey-Curve: cv25519
Subkey-Usage: encrypt"
g() { gpg --homedir "$home" --batch --quiet "$@"; }

gen() {  # gen NAME-REAL EMAIL ALGO [EXPIRE] [extra gpg args...]
  local real=$1 mail=$2 algo=$3 expire=${4:-0}
  shift 4 || shift $#
  local spec
  case $algo in
    ecc) spec=$ALGO_ECC ;;
    rsa2048) spec="Key-Type: RSA
Key-Length: 2048
Key-Usage: sign
Subkey-Type: RSA
Subkey-Length: 2048
Subkey-Usage: encrypt" ;;
  esac
  g "$@" --gen-key <<EOF
$spec
Name-Real: $real
Name-Email: $mail
Expire-Date: $expire
%no-protection
%commit
EOF
}

fpr_of() { g --with-colons --list-keys "<$1>" | awk -F: '/^fpr/{print $10; exit}'; }

export_pair() {  # export_pair FILE-STEM EMAIL
  local fpr; fpr=$(fpr_of "$2")
  g --armor --export "$fpr" >"$out/$1.pub.asc"
  g --armor --export-secret-keys "$fpr" >"$out/$1.sec.asc"
  echo "$1 $2 $fpr"
}

gen "Mailgate Support" support@example.test ecc
gen "Carla Customer" customer@example.com ecc
gen "Alice Agent" alice@example.test ecc
gen "Sam Stranger" stranger@example.org ecc
gen "Oscar Oldclient" customer-rsa@example.com rsa2048
# created on 2020-01-01 and valid for one day: expired ever since
gen "Eddie Expired" expired@example.com ecc 1d --faked-system-time '20200101T000000!'

{
  export_pair queue support@example.test
  export_pair customer customer@example.com
  export_pair agent alice@example.test
  export_pair stranger stranger@example.org
  export_pair customer-rsa customer-rsa@example.com
  export_pair expired expired@example.com
} >"$out/FINGERPRINTS.txt"

# a passphrase-protected queue key (passphrase: "correct horse battery staple")
g --pinentry-mode loopback --gen-key <<EOF
${ALGO_ECC}
Name-Real: Mailgate Billing
Name-Email: billing@example.test
Expire-Date: 0
Passphrase: correct horse battery staple
%commit
EOF
pfpr=$(fpr_of billing@example.test)
g --armor --export "$pfpr" >"$out/queue-protected.pub.asc"
g --pinentry-mode loopback --passphrase "correct horse battery staple" \
  --armor --export-secret-keys "$pfpr" >"$out/queue-protected.sec.asc"
echo "queue-protected billing@example.test $pfpr" >>"$out/FINGERPRINTS.txt"

# a revoked key: generate, import its pre-made revocation certificate, export the public part
gen "Rita Revoked" revoked@example.com ecc
rfpr=$(fpr_of revoked@example.com)
sed 's/^:-----BEGIN/-----BEGIN/' "$home/openpgp-revocs.d/$rfpr.rev" | g --import 2>/dev/null
g --armor --export "$rfpr" >"$out/revoked.pub.asc"
echo "revoked revoked@example.com $rfpr" >>"$out/FINGERPRINTS.txt"

cat "$out/FINGERPRINTS.txt"
