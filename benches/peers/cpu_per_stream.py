#!/usr/bin/env python3
"""Sender + receiver CPU for one 20 s 48 kHz stereo stream over loopback,
isochron beside GStreamer, one run each (README, "CPU per stream").

isochron: `isochron send --live` into `isochron recv --out` (QUIC, TLS 1.3
with both ends authenticated, adaptive FEC, 80 ms latency, 1200-byte
packets). GStreamer (gstreamer1.0-tools, -plugins-good): RTP L16 over UDP
(rtpL16pay mtu=1200 into udpsrc ! rtpjitterbuffer latency=80 ! wavenc !
filesink): no encryption, no FEC. CPU is user + system time of each
process (wait4), the whole run: start-up, 20 s of streaming, the end.

Usage: python3 benches/peers/cpu_per_stream.py [path/to/isochron]
(Roc is not packaged in Debian 12, so it is not measured here.)"""
import math, os, random, re, signal, struct, subprocess, sys, time, wave
import media  # benches/peers/media.py: the shared test signal
import procs  # benches/peers/procs.py: fingerprint, kill loop

ISO = sys.argv[1] if len(sys.argv) > 1 else "isochron"
D = os.environ.get("WORK", "/tmp/isochron-cpu-per-stream")
os.makedirs(D, exist_ok=True)
WAV = f"{D}/in.wav"
SECS = 20

def make_wav():
    media.make_wav(WAV, SECS)

def cpu(ru):
    return ru.ru_utime + ru.ru_stime

def wait(p):
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = status
    return cpu(ru)

def run_gst():
    out = f"{D}/gst-out.wav"
    caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=L16,channels=2,payload=96"
    rx = subprocess.Popen(["gst-launch-1.0", "-q", "-e", "udpsrc", "port=50040", f"caps={caps}", "!",
        "rtpjitterbuffer", "latency=80", "!", "rtpL16depay", "!", "audioconvert", "!",
        "wavenc", "!", "filesink", f"location={out}"])
    time.sleep(1.0)
    t0 = time.time()
    tx = subprocess.Popen(["gst-launch-1.0", "-q", "filesrc", f"location={WAV}", "!", "wavparse", "!",
        "audioconvert", "!", "rtpL16pay", "mtu=1200", "pt=96", "!", "udpsink", "host=127.0.0.1", "port=50040"])
    s = wait(tx)
    wall = time.time() - t0
    time.sleep(0.5)
    rx.send_signal(signal.SIGINT)
    r = wait(rx)
    return s, r, wall, os.path.getsize(out) if os.path.exists(out) else 0

def run_iso():
    env = dict(os.environ, XDG_CONFIG_HOME=f"{D}/xdg")
    fp = procs.fingerprint(ISO, env)
    out = f"{D}/iso-out"
    subprocess.run(["rm", "-rf", out])
    rx = subprocess.Popen([ISO, "recv", "--listen", "127.0.0.1:50041", "--out", out, "--allow", fp],
        env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    t0 = time.time()
    tx = subprocess.Popen([ISO, "send", WAV, "--live", "--to", "127.0.0.1:50041", "--pin", fp],
        env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    s = wait(tx)
    wall = time.time() - t0
    time.sleep(0.5)
    rx.send_signal(signal.SIGINT)
    r = wait(rx)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) if os.path.isdir(out) else 0
    return s, r, wall, size

make_wav()
print("load", open("/proc/loadavg").read().split()[:3])
for name, f in (("gstreamer", run_gst), ("isochron", run_iso)):
    s, r, wall, size = f()
    print(f"{name}: sender {s:.3f} s CPU, receiver {r:.3f} s CPU, total {s + r:.3f} s over {wall:.1f} s "
          f"= {100 * (s + r) / SECS:.2f} % of a core per 20 s stream; output {size} bytes")
print("load", open("/proc/loadavg").read().split()[:3])
