#!/usr/bin/env bash
# A signed apt repository of the flatlink packages, made with reprepro, that a Pi installs from:
#
#   scripts/apt-repo.sh OUT DEB...        # e.g. build/flatlink-*.deb build-arm64/flatlink-*.deb
#
# OUT gets the repository layout (dists/bookworm/{Release,InRelease,Release.gpg},
# dists/bookworm/main/binary-{amd64,arm64,armhf}/Packages, pool/) and the public key,
# OUT/flatlink-archive-keyring.gpg. Serve dists/, pool/ and the key over HTTPS (any static
# web server; conf/ and db/ are reprepro's own); on the Pi:
#
#   sudo install -m 0644 flatlink-archive-keyring.gpg /usr/share/keyrings/
#   echo 'deb [signed-by=/usr/share/keyrings/flatlink-archive-keyring.gpg] https://apt.example.com/flatlink bookworm main' |
#     sudo tee /etc/apt/sources.list.d/flatlink.list
#   sudo apt update && sudo apt install flatlink-gateway
#
# Signing key: FLATLINK_REPO_KEY (a key id in the caller's GNUPGHOME, the release key, kept
# off the build machine's disk otherwise). Without it, a throwaway key is made in
# OUT-gnupg (beside OUT): good for tests (tests/system/nspawn.test.mjs installs from such a repository
# through apt, signature checked), never for a real repository.
# The -dbgsym .ddeb packages are not put in (serve them beside, or from a debug archive).
set -euo pipefail

out="${1:?usage: scripts/apt-repo.sh OUT DEB...}"
shift
(($#)) || { echo "apt-repo.sh: no .deb given" >&2; exit 2; }
mkdir -p "$out/conf"

key="${FLATLINK_REPO_KEY:-}"
if [[ -z "$key" ]]; then
  export GNUPGHOME="${out%/}-gnupg"  # beside OUT, never inside what is served
  mkdir -p "$GNUPGHOME"
  chmod 700 "$GNUPGHOME"
  if ! gpg --batch --list-secret-keys flatlink-test-repo >/dev/null 2>&1; then
    echo "apt-repo.sh: no FLATLINK_REPO_KEY: making a throwaway test key in $GNUPGHOME" >&2
    gpg --batch --quiet --passphrase '' --quick-generate-key 'flatlink test repository <flatlink-test-repo@flatlink.invalid>' \
      ed25519 sign 1d
  fi
  key=$(gpg --batch --with-colons --list-secret-keys flatlink-test-repo | awk -F: '$1 == "fpr" { print $10; exit }')
fi

cat >"$out/conf/distributions" <<CONF
Origin: flatlink
Label: flatlink
Suite: stable
Codename: bookworm
Architectures: amd64 arm64 armhf
Components: main
Description: flatlink gateway and cloud packages
SignWith: $key
CONF
cat >"$out/conf/options" <<CONF
verbose
CONF

for deb in "$@"; do
  case "$deb" in
    *.deb) reprepro --silent -b "$out" includedeb bookworm "$deb" ;;
    *) echo "apt-repo.sh: skipping $deb (not a .deb)" >&2 ;;
  esac
done
gpg --batch --yes --export "$key" >"$out/flatlink-archive-keyring.gpg"
reprepro -b "$out" list bookworm
echo "apt-repo.sh: $out signed with $key; public key: $out/flatlink-archive-keyring.gpg"
