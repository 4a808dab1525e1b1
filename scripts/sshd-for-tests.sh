#!/usr/bin/env bash
# Starts a throwaway sshd on a free loopback port for the SSH tests, or stops it.
#   scripts/sshd-for-tests.sh start DIR   → prints nothing; DIR holds port, keys, user, log
#   scripts/sshd-for-tests.sh stop DIR
# Needs root (it creates the user `execkit-ssh-test`) and openssh-server (scripts/test.sh
# installs it). Nothing listens beyond 127.0.0.1; the user may log in only to this sshd.
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?state directory}"
user=execkit-ssh-test

if [ "$cmd" = stop ]; then
  if [ -f "$dir/sshd.pid" ]; then
    kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
  fi
  exit 0
fi

mkdir -p "$dir" /run/sshd
chmod 755 "$dir"
rm -f "$dir"/host_ed25519_key* "$dir"/user_key* "$dir"/other_key* "$dir"/sshd.pid
ssh-keygen -q -t ed25519 -N '' -C execkit-test-host -f "$dir/host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C execkit-test-user -f "$dir/user_key"
ssh-keygen -q -t ed25519 -N '' -C execkit-test-other -f "$dir/other_key"
if ! id "$user" >/dev/null 2>&1; then
  useradd -m -d "$dir/home" -s /bin/bash "$user"
fi
# A host as hosts are: the account's startup files print a banner (on stdout and stderr)
# for every exec channel, and its home holds the files a sandbox must keep the agent
# from (a private key, authorized_keys, startup files, other directories).
home="$(getent passwd "$user" | cut -d: -f6)"
mkdir -p "$home/.ssh" "$home/elsewhere"
printf 'echo "Welcome to the execkit test host"\necho "motd: be nice" >&2\n' > "$home/.bashrc"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nfake-test-key-not-a-secret\n-----END OPENSSH PRIVATE KEY-----\n' > "$home/.ssh/id_ed25519"
: > "$home/.ssh/authorized_keys"
chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/id_ed25519"
chown -R "$user:" "$home"
password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
echo "$user:$password" | chpasswd
printf '%s' "$password" > "$dir/password"
chmod 600 "$dir/password"
cp "$dir/user_key.pub" "$dir/authorized_keys"
chmod 644 "$dir/authorized_keys"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
echo "$port" > "$dir/port"
echo "$user" > "$dir/user"
cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $user
LogLevel VERBOSE
MaxStartups 100
CONF
: > "$dir/sshd.log"
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
for _ in $(seq 100); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
    exit 0
  fi
  sleep 0.05
done
echo "sshd did not start; its log:" >&2
cat "$dir/sshd.log" >&2
exit 1
