#!/usr/bin/env bash
# Starts a private dockerd for the Docker tests and builds the test image, or stops it.
#   scripts/dockerd-for-tests.sh start DIR   → DIR/docker.sock, images `execkit-test:latest`
#                                              and `execkit-test-sh:latest` (no bash)
#   scripts/dockerd-for-tests.sh stop DIR
# No registry is reachable, so the image is a `docker import` of a small root filesystem
# assembled from this host's bash, coreutils and the libraries they load.
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?state directory}"

if [ "$cmd" = stop ]; then
  if [ -f "$dir/dockerd.pid" ]; then
    pid="$(cat "$dir/dockerd.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  exit 0
fi

mkdir -p "$dir"
sock="$dir/docker.sock"
if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
  echo "a dockerd already runs for $dir (stop it first)" >&2
  exit 1
fi
# What a dockerd that died left behind (its containerd socket, pid file) stops the next one.
rm -rf "$dir/exec" "$dir/dockerd.pid" "$sock"
dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
  --pidfile "$dir/dockerd.pid" --bridge none --iptables=false --ip6tables=false \
  > "$dir/dockerd.log" 2>&1 &
for _ in $(seq 200); do
  if DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then break; fi
  sleep 0.1
done
if ! DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
  echo "dockerd did not start; its log:" >&2
  tail -30 "$dir/dockerd.log" >&2
  exit 1
fi

# The test image: bash, coreutils, grep, sed, ps, git, find, xargs, curl and their libraries; a non-root user.
root="$dir/rootfs"
rm -rf "$root"
mkdir -p "$root"/{bin,etc,tmp,proc,dev,sys,work,home/runner}
chmod 1777 "$root/tmp"
progs=(bash sh ls cat echo env id mkdir rm sleep head tail grep sed wc touch printf true false kill ps readlink stat mkfifo chmod cp mv tr cut sort uname pwd dd yes seq timeout ln realpath git find xargs curl)
for p in "${progs[@]}"; do
  src="$(type -P "$p" || true)"
  [ -n "$src" ] || continue
  src="$(readlink -f "$src")"
  cp "$src" "$root/bin/$p"
  for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$root$(dirname "$lib")"
    cp -n "$(readlink -f "$lib")" "$root$lib" 2>/dev/null || true
  done
done
printf 'root:x:0:0:root:/root:/bin/bash\nrunner:x:1000:1000:runner:/home/runner:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\nrunner:x:1000:\n' > "$root/etc/group"
chown 1000:1000 "$root/home/runner" "$root/work"
tar -C "$root" -c . | DOCKER_HOST="unix://$sock" docker import \
  --change 'ENV PATH=/bin' --change 'USER 1000' --change 'WORKDIR /work' \
  - execkit-test:latest >/dev/null
# The same without bash (`sh` is dash): for the `sh` fallback.
rm -f "$root/bin/bash"
tar -C "$root" -c . | DOCKER_HOST="unix://$sock" docker import \
  --change 'ENV PATH=/bin' --change 'USER 1000' --change 'WORKDIR /work' \
  - execkit-test-sh:latest >/dev/null
rm -rf "$root"
