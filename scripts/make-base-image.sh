#!/usr/bin/env bash
# Make the Docker base image from Debian's packages, for hosts that cannot pull from Docker Hub.
#
#   scripts/make-base-image.sh [--name diffusec-base:bookworm] [--suite bookworm] [--mirror URL] [--ca FILE]... [--root DIR]
#
# debootstrap installs a minimal Debian with python3 (3.11 on bookworm, the version the pinned torch
# wheel is built for), venv and pip into a folder; `docker import` turns that folder into an image.
# Then build with it:
#
#   docker compose build --build-arg BASE_IMAGE=diffusec-base:bookworm      # or BASE_IMAGE=... in .env
#
# --ca FILE (repeatable) adds a PEM certificate to the image's trust store: on a network whose proxy intercepts
# TLS, pip inside the build needs that proxy's CA (the host's bundle, /etc/ssl/certs/ca-certificates.crt,
# already holds it there). Needs root, debootstrap (apt-get install debootstrap) and a Docker daemon.
set -euo pipefail

name="diffusec-base:bookworm"
suite="bookworm"
mirror="http://deb.debian.org/debian"
cas=()
root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --suite) suite="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --ca) cas+=("$2"); shift 2 ;;
    --root) root="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "debootstrap needs root"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install -y debootstrap)"
command -v docker >/dev/null || fail "docker is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || fail "no Docker daemon answers (start one: dockerd > /tmp/dockerd.log 2>&1 &)"
for ca in "${cas[@]}"; do
  [ -f "$ca" ] || fail "--ca $ca: no such file"
  grep -q "BEGIN CERTIFICATE" "$ca" || fail "--ca $ca: not a PEM certificate"
done

# A temporary root unless --root names one to keep (it is ~400 MB; .gitignore lists /build/).
cleanup=""
if [ -z "$root" ]; then
  root="$(mktemp -d /tmp/diffusec-base.XXXXXX)"
  cleanup="$root"
fi
trap '[ -n "$cleanup" ] && rm -rf "$cleanup"' EXIT

echo "debootstrap $suite from $mirror into $root" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$suite" "$root" "$mirror" >&2

# Debian marks its Python externally managed (PEP 668), which makes pip refuse to install outside a
# venv; the image is a single-purpose container, so the marker goes.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
# The health checks and many scripts call `python`, which Debian only names python3.
ln -sf python3 "$root/usr/bin/python"
if [ "${#cas[@]}" -gt 0 ]; then
  i=0
  for ca in "${cas[@]}"; do
    i=$((i + 1))
    cp "$ca" "$root/usr/local/share/ca-certificates/diffusec-extra-$i.crt"
  done
  chroot "$root" update-ca-certificates >&2
fi
# Apt's package lists and caches are not needed at run time.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$name" >/dev/null
docker run --rm "$name" python -c 'import sys, ensurepip, venv; print("python", sys.version.split()[0])' >&2
echo "$name"
