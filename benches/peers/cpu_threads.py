#!/usr/bin/env python3
"""Where one stream's CPU goes, per process and thread: start-up against
steady state, and wake-ups a second (cpu_per_stream.py gives the totals).

    python3 benches/peers/cpu_threads.py target/release/isochron [SECONDS]

Runs `isochron recv --out` and `isochron send --live` (the same stream as
cpu_per_stream.py: 48 kHz stereo over loopback, default settings) and reads
every thread's /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU) and
its context switches (voluntary ones are the wake-ups of a thread that
blocks) at three points: when the sender has connected (its network thread
exists and its first media are out, 1 s after its start), 1 s before the
stream's end, and at exit (the last read before the processes end). The
steady-state columns are the middle window divided by its length. Prints one
table per process and the totals; start-up is everything before the window
(process start, TLS handshake, hello), the end everything after it (the
last second of media, the play-out, the exit). The last lines check the
sum against wait4's user + system time, which cpu_per_stream.py reports.
Single runs on a shared machine move by up to 2x: compare wake-ups, and
CPU only between runs made one after the other.
"""
import math, os, random, re, signal, struct, subprocess, sys, time, wave
import media  # benches/peers/media.py: the shared test signal
import procs  # benches/peers/procs.py: fingerprint, kill loop

ISO = sys.argv[1] if len(sys.argv) > 1 else "isochron"
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
D = os.environ.get("WORK", "/tmp/isochron-cpu-threads")
os.makedirs(D, exist_ok=True)
WAV = f"{D}/in-{SECS}.wav"


def make_wav():
    media.make_wav(WAV, SECS)


def threads(pid):
    """tid -> (name, cpu ns, voluntary switches, involuntary switches)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            run = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
            st = open(f"/proc/{pid}/task/{tid}/status").read()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        name = re.search(r"^Name:\s*(.*)$", st, re.M).group(1)
        vol = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", st, re.M).group(1))
        inv = int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", st, re.M).group(1))
        out[tid] = (name, run, vol, inv)
    return out


def merge(*snaps):
    """Keep each thread's latest reading (threads that ended keep theirs)."""
    m = {}
    for s in snaps:
        m.update(s)
    return m


def table(label, a, b, c, window):
    print(f"{label}: thread | start-up ms | steady ms/s | wake-ups/s (vol + invol) | end ms")
    tot = [0.0, 0.0, 0.0, 0.0]
    for tid in sorted(c, key=lambda t: int(t)):
        name, run_c, vol_c, inv_c = c[tid]
        run_a, vol_a, inv_a = a.get(tid, (name, 0, 0, 0))[1:]
        run_b, vol_b, inv_b = b.get(tid, c[tid])[1:]
        start = run_a / 1e6
        steady = (run_b - run_a) / 1e6 / window
        wakes = (vol_b - vol_a) / window
        inv = (inv_b - inv_a) / window
        end = (run_c - run_b) / 1e6
        tot[0] += start; tot[1] += steady; tot[2] += wakes + inv; tot[3] += end
        print(f"  {name:<18} {start:8.1f} {steady:8.2f} {wakes:7.1f} + {inv:5.1f} {end:8.1f}")
    print(f"  {'total':<18} {tot[0]:8.1f} {tot[1]:8.2f} {tot[2]:9.1f} {tot[3]:14.1f}")
    return tot


make_wav()
env = dict(os.environ, XDG_CONFIG_HOME=f"{D}/xdg")
fp = procs.fingerprint(ISO, env)
out = f"{D}/out"
subprocess.run(["rm", "-rf", out])
print("load", open("/proc/loadavg").read().split()[:3])
rx = subprocess.Popen([ISO, "recv", "--listen", "127.0.0.1:50043", "--out", out, "--allow", fp],
                      env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
time.sleep(1.0)
t0 = time.time()
tx = subprocess.Popen([ISO, "send", WAV, "--live", "--to", "127.0.0.1:50043", "--pin", fp],
                      env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
# Every thread's latest reading, polled every 20 ms (a thread that ends,
# such as a file's reader, keeps its last one).
sl, rl = {}, {}
def poll_until(t):
    global sl, rl
    while time.time() < t:
        sl, rl = merge(sl, threads(tx.pid)), merge(rl, threads(rx.pid))
        time.sleep(0.02)
poll_until(t0 + 1.0)
ta = time.time()
sa, ra = dict(sl), dict(rl)
poll_until(t0 + max(2.0, SECS - 1.0))
tb = time.time()
sb, rb = dict(sl), dict(rl)
RU = {}
def running(p):
    """False once `p` has exited (its rusage kept in RU)."""
    pid, _, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        return True
    RU[p.pid] = ru.ru_utime + ru.ru_stime
    return False
while running(tx):
    poll_until(time.time() + 0.1)
sc = sl
time.sleep(0.5)
rx.send_signal(signal.SIGINT)
while running(rx):
    poll_until(time.time() + 0.1)
rc = rl
window = tb - ta
print(f"window {window:.1f} s of {SECS} s streamed")
s = table("sender", sa, sb, sc, window)
r = table("receiver", ra, rb, rc, window)
print(f"wait4 (user + system, as cpu_per_stream.py): sender {RU[tx.pid]:.3f} s, "
      f"receiver {RU[rx.pid]:.3f} s; schedstat: sender {sum(s[i] for i in (0, 3)) / 1e3 + s[1] * window / 1e3:.3f} s, "
      f"receiver {sum(r[i] for i in (0, 3)) / 1e3 + r[1] * window / 1e3:.3f} s")
print(f"both: start-up {s[0] + r[0]:.1f} ms, steady {s[1] + r[1]:.2f} ms/s "
      f"({s[2] + r[2]:.0f} switches/s), end {s[3] + r[3]:.1f} ms")
