#!/usr/bin/env python3
"""How often a signal sent right after a background process starts misses it (the race
`runner/src/process/missed_signals.rs` repairs), measured outside the runner.

A bash with the session's settings (`set -m; trap '' INT`) starts `sleep 30; echo after`
with the wrapper line of `runner/src/process/launch.rs` (copied here: keep the two in
step), waits for the subshell's `r` on the status pipe, and sends SIGINT to the group at
once — sooner than the runner can, which is what makes the race show. A start whose status
does not arrive within 3 s lost its signal. With `--repair` the script looks again at 30,
120 and 400 ms as `missed_signals` does (group members started no later than the send's
tick, with SIGINT at its default action, get it again). Not part of CI.

    scripts/signal_race.py [N] [--repair]
"""
import os, select, signal, subprocess, sys, tempfile, time

SIGS = "INT TERM HUP QUIT USR1 USR2"
INNER = ("for __ek_s in INT TERM HUP QUIT; do builtin trap \"builtin trap - $__ek_s; "
         "builtin kill -$__ek_s \\$BASHPID\" $__ek_s; done; builtin trap 'builtin :' USR1 USR2;")
COMMAND = "sleep 30; echo after"


def wrapper(fifos):
    return (f"__ek_p='{COMMAND}'; {{ builtin trap '__ek_g=1' {SIGS}; ( {INNER} builtin printf 'r\\n' >&9; "
            f"builtin eval \"$__ek_p\" 9>&- ) <{fifos['in']} >{fifos['out']} 2>{fifos['err']}; "
            f"builtin printf '%s\\n' \"$?\" >&9; }} 9>{fifos['st']} </dev/null >/dev/null 2>&1 & "
            "builtin printf '%s\\n' \"$!\"; builtin disown $! 2>/dev/null; builtin unset __ek_p\n")


def ticks_now():
    up = open("/proc/uptime").read().split()[0]
    return int(up.replace(".", ""))


def look_again(pgid, sent):
    """Sends SIGINT again to the group's members that missed it; how many."""
    bit, sent_again = 1 << (signal.SIGINT - 1), 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
            f = stat[stat.rfind(")") + 2:].split()
            if int(f[2]) != pgid or f[0] == "Z" or int(f[19]) > sent:
                continue
            status = dict(l.split(":\t", 1) for l in open(f"/proc/{d}/status").read().splitlines() if ":\t" in l)
        except OSError:
            continue
        if any(int(status[k], 16) & bit for k in ("SigCgt", "SigIgn", "SigBlk", "SigPnd", "ShdPnd")):
            continue
        os.kill(int(d), signal.SIGINT)
        sent_again += 1
    return sent_again


def main():
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "300"))
    repair = "--repair" in sys.argv
    shell = subprocess.Popen(["bash", "--norc", "--noprofile"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    shell.stdin.write(b"set -m; trap '' INT\n")
    lost, sent_again, statuses = 0, 0, {}
    with tempfile.TemporaryDirectory() as dir:
        for k in range(n):
            fifos = {w: f"{dir}/{k}-{w}" for w in ("in", "out", "err", "st")}
            for path in fifos.values():
                os.mkfifo(path)
            shell.stdin.write(wrapper(fifos).encode())
            shell.stdin.flush()
            # In the order the wrapper opens them: status first, then the subshell's three.
            st = os.open(fifos["st"], os.O_RDONLY)
            fds = [st, os.open(fifos["in"], os.O_RDWR), os.open(fifos["out"], os.O_RDONLY),
                   os.open(fifos["err"], os.O_RDONLY)]
            pgid = int(shell.stdout.readline())
            assert os.read(st, 2) == b"r\n"
            os.kill(-pgid, signal.SIGINT)
            if repair:
                sent, waited = ticks_now(), 0.0
                for at in (0.03, 0.12, 0.4):
                    time.sleep(at - waited)
                    waited = at
                    sent_again += look_again(pgid, sent)
            if select.select([st], [], [], 3)[0]:
                status = os.read(st, 100).decode().strip()
            else:
                lost += 1
                status = "lost"
                os.kill(-pgid, signal.SIGKILL)
            statuses[status] = statuses.get(status, 0) + 1
            for fd in fds:
                os.close(fd)
    print(f"{lost} of {n} signals lost; statuses {statuses}" + (f"; sent again {sent_again}" if repair else ""))


main()
