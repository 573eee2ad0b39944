#!/usr/bin/env python3
"""isochron beside SRT on the same impaired links, one run each (README,
"Beside SRT"; issue 13, "Performance").

Every run streams 20 s of 48 kHz stereo L16 (192 kB/s) with an 80 ms
latency through `isochron netem`, the UDP relay with the bench's
loss/delay/jitter model, started afresh for every run with the same options
and seed, both directions impaired alike (so NAKs, ACKs, reports and NACKs
are lost too). The links:

  ge-2-b3     Gilbert-Elliott 2 %, mean burst 3, 20 ms each way
  bern-5-j5   Bernoulli 5 %, 20 +- 5 ms each way
  ge-5-b10    Gilbert-Elliott 5 %, mean burst 10, 20 ms each way

SRT (srt-live-transmit, Debian's srt-tools): this script sends 960-byte UDP
datagrams every 5 ms (the 48 kHz stereo L16 rate; each carries a sequence
number and its send time) into `srt-live-transmit udp:// srt://` (caller,
latency=80), through the relay, into `srt-live-transmit srt:// udp://`
(listener, latency=80, live mode: too-late packet drop on, as shipped),
whose output datagrams this script counts: missing (sequence numbers never
delivered), late (delivered more than latency + the link's largest one-way
delay + 20 ms after they were sent: SRT's delivery instant is its latency
above the handshake's one-way delay, 104-109 ms here, so this is 14-21 ms
past it) and duplicated. Residual, for both peers, is missing + late over
sent: what a playout at that latency does not have in time. A tail of 0.5 s
more datagrams follows the counted 4000 so that the retransmissions of the
last counted ones are in the sender's statistics (srt-live-transmit reports
every N packets it reads, -s); they are not counted as missing. Overhead is
SRT's own count at the sender (-pf json -f): packetsRetransmitted over
packetsUnique (every data packet has the same size, so it is also the byte
ratio; control packets are not counted, as isochron does not count its own).

isochron: `isochron send --live --recovery hybrid` (FEC sized for what a
round trip cannot recover, NACKs for the rest; once with the default
residual target, 1e-4, once with `--target-loss 1e-3`, $LOOSE, still below
what SRT leaves on the bursty links) and `--recovery fec` (the old figure), defaults otherwise (10 ms frames, 1200-byte packets, so two
960-byte source packets a frame as above, adaptive FEC, D = 1), into
`isochron recv --once --latency 80ms`, paired as the README says (one
identity, the receiver admits it with --allow, the sender pins it). Residual
is the receiver's `residual_loss_ratio` (unrecovered over expected source
packets: lost and not rebuilt or retransmitted before its playout instant),
redundancy the sender's `redundancy_ratio` (FEC repair + retransmitted
bytes over source bytes), both from --stats-json (docs/stats.schema.json).

The same seed gives both peers the same sequence of loss decisions, but not
the same lost packets: each peer's datagrams (data, repairs, control) take
their own places in it. One run each: a residual of a few packets moves by
as much from seed to seed.

Usage: python3 benches/peers/srt_side_by_side.py path/to/isochron [LINK ...]
        (default: every link; SEED=1 and WORK=/tmp/isochron-srt-side-by-side
        in the environment change the seed and the working directory).
Exits 1 when a run fails (a peer exits early, no output, no statistics) and
2 when a peer is not installed; it installs nothing. An isochron sender that
fails after its receiver played the stream to the end (exit 3, and then no
--stats-json) is reported in its row, with the receiver's redundancy_ratio
(what arrived) in place of the sender's."""
import json, math, os, random, re, shutil, signal, socket, struct, subprocess, sys, threading, time, wave
import media  # benches/peers/media.py: the shared test signal
import procs  # benches/peers/procs.py: fingerprint, kill loop

SECS = 20
RATE, CHANNELS = 48000, 2
LATENCY_MS = 80
PKT_MS = 5  # 960 bytes of L16 stereo at 48 kHz every 5 ms
PAYLOAD = RATE * CHANNELS * 2 * PKT_MS // 1000
COUNTED = SECS * 1000 // PKT_MS
TAIL = 500 // PKT_MS
SEED = int(os.environ.get("SEED", "1"))
# The residual the second hybrid run aims for (`send --target-loss`): below what SRT leaves on
# the bursty links (0.25-3.4 % in the README's runs), ten times the default 1e-4.
LOOSE = os.environ.get("LOOSE", "1e-3")
D = os.environ.get("WORK", "/tmp/isochron-srt-side-by-side")

# name -> (netem options, description, largest one-way delay in ms)
LINKS = {
    "ge-2-b3": (["--loss", "2%", "--burst", "3", "--delay", "20ms"],
                "GE 2 %, burst 3, 20 ms each way", 20),
    "bern-5-j5": (["--loss", "5%", "--delay", "20ms", "--jitter", "5ms"],
                  "Bernoulli 5 %, 20 +- 5 ms each way", 25),
    "ge-5-b10": (["--loss", "5%", "--burst", "10", "--delay", "20ms"],
                 "GE 5 %, burst 10, 20 ms each way", 20),
}


class RunFailed(Exception):
    pass


def fail(msg, code=1):
    print(f"srt_side_by_side: {msg}", file=sys.stderr)
    sys.exit(code)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, what, proc=None, timeout=10.0):
    """Polls pred until true; fails when proc exits first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise RunFailed(f"{what}: the process exited with {proc.returncode} first")
        time.sleep(0.02)
    raise RunFailed(f"{what}: not within {timeout:.0f} s")


def stop(proc, sig=signal.SIGINT, timeout=10.0):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RunFailed(f"{proc.args[0]} did not stop within {timeout:.0f} s of a signal")


class Netem:
    """`isochron netem` between a client and `to`, started for one run."""

    def __init__(self, iso, link, to_port, tag):
        self.ready = f"{D}/{tag}-netem.json"
        self.log = f"{D}/{tag}-netem.txt"
        if os.path.exists(self.ready):
            os.remove(self.ready)
        self.proc = subprocess.Popen(
            [iso, "netem", "--listen", "127.0.0.1:0", "--to", f"127.0.0.1:{to_port}", "--seed", str(SEED),
             "--ready-file", self.ready] + LINKS[link][0],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.ready) and os.path.getsize(self.ready) > 0, "netem ready", self.proc)
        self.port = int(json.load(open(self.ready))["addr"].rsplit(":", 1)[1])

    def finish(self):
        """Stops the relay; returns (forward, backward) (packets, lost) from its summary."""
        stop(self.proc)
        text = open(self.log).read()
        dirs = {}
        for name, n, lost in re.findall(r"(forward|backward): (\d+) packets, (\d+) lost", text):
            dirs[name] = (int(n), int(lost))
        if len(dirs) != 2:
            raise RunFailed(f"netem printed no summary ({self.log}): {text[-300:]}")
        return dirs["forward"], dirs["backward"]


def json_objects(path):
    """The JSON objects srt-live-transmit wrote one after the other."""
    text = open(path).read() if os.path.exists(path) else ""
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i] in " \t\r\n,[]":
            i += 1
        if i >= len(text):
            return out
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return out  # a report cut short by the interrupt
        out.append(obj)


def run_srt(iso, link):
    slt = shutil.which("srt-live-transmit")
    tag = f"srt-{link}"
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    out.bind(("127.0.0.1", 0))
    out_port = out.getsockname()[1]
    listen, inp = free_udp_port(), free_udp_port()
    lat = f"latency={LATENCY_MS}"
    for f in ("tx.json", "rx.json"):
        if os.path.exists(f"{D}/{tag}-{f}"):
            os.remove(f"{D}/{tag}-{f}")
    common = ["-a:no", "-s:10", "-pf:json", "-f", "-v"]
    rx = subprocess.Popen([slt, f"srt://127.0.0.1:{listen}?mode=listener&{lat}", f"udp://127.0.0.1:{out_port}"]
                          + common + [f"-statsout:{D}/{tag}-rx.json"],
                          stdout=open(f"{D}/{tag}-rx.txt", "w"), stderr=subprocess.STDOUT)
    started = [rx]
    try:
        wait_for(lambda: "listen..." in open(f"{D}/{tag}-rx.txt").read(), "srt-live-transmit listening", rx)
        netem = Netem(iso, link, listen, tag)
        started.append(netem.proc)
        tx = subprocess.Popen([slt, f"udp://127.0.0.1:{inp}", f"srt://127.0.0.1:{netem.port}?{lat}"]
                              + common + [f"-statsout:{D}/{tag}-tx.json"],
                              stdout=open(f"{D}/{tag}-tx.txt", "w"), stderr=subprocess.STDOUT)
        started.append(tx)
        wait_for(lambda: "SRT target connected" in open(f"{D}/{tag}-tx.txt").read(), "SRT connected", tx)

        arrivals = {}  # seq -> first arrival delay (s)
        dups = [0]
        done = threading.Event()

        def reader():
            out.settimeout(0.2)
            while not done.is_set():
                try:
                    d, _ = out.recvfrom(4096)
                except socket.timeout:
                    continue
                now = time.monotonic_ns()
                seq, sent = struct.unpack_from("<IQ", d)
                if seq in arrivals:
                    dups[0] += 1
                else:
                    arrivals[seq] = (now - sent) / 1e9

        th = threading.Thread(target=reader)
        th.start()
        src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0 = time.monotonic()
        pad = bytes(PAYLOAD - 12)
        for i in range(COUNTED + TAIL):
            due = t0 + i * PKT_MS / 1000
            while (left := due - time.monotonic()) > 0:
                time.sleep(left)
            src.sendto(struct.pack("<IQ", i, time.monotonic_ns()) + pad, ("127.0.0.1", inp))
        time.sleep(1.0)  # media time: the last datagrams' latency and their retransmissions
        stop(tx)
        done.set()
        th.join()
        rx.wait(10)
        fwd, back = netem.finish()
    finally:
        procs.kill_all(started)
        out.close()
    txs = json_objects(f"{D}/{tag}-tx.json")
    rxs = json_objects(f"{D}/{tag}-rx.json")
    if not txs or not rxs:
        raise RunFailed(f"srt-live-transmit wrote no statistics ({D}/{tag}-tx.json, -rx.json)")
    if not arrivals:
        raise RunFailed(f"nothing came out of the SRT receiver ({D}/{tag}-rx.txt)")
    s, r = txs[-1]["send"], rxs[-1]["recv"]
    deadline = (LATENCY_MS + LINKS[link][2] + 20) / 1000
    with open(f"{D}/{tag}-delays.txt", "w") as f:
        f.writelines(f"{i} {1000 * arrivals[i]:.3f}\n" if i in arrivals else f"{i} missing\n" for i in range(COUNTED))
    counted = [arrivals[i] for i in range(COUNTED) if i in arrivals]
    delays = sorted(counted)
    missing, late = COUNTED - len(counted), sum(1 for x in counted if x > deadline)
    return {
        "missing": missing,
        "expected": COUNTED,
        "late": late,
        "residual": (missing + late) / COUNTED,
        "duplicates": dups[0],
        "overhead": s["packetsRetransmitted"] / max(1, s["packetsUnique"]),
        "retransmitted": s["packetsRetransmitted"],
        "unique": s["packetsUnique"],
        "srt_rcv_lost": r["packetsLost"], "srt_rcv_dropped": r["packetsDropped"],
        "srt_rcv_belated": r["packetsBelated"],
        "delay_p50_ms": 1000 * delays[len(delays) // 2],
        "delay_max_ms": 1000 * delays[-1],
        "rtt_ms": txs[-1]["link"]["rtt"],
        "fwd": fwd, "back": back,
    }


def make_wav(path):
    media.make_wav(path, SECS, RATE)


def run_iso(iso, link, recovery, wav, env, fp, target=None):
    tag = f"iso-{recovery}-{link}" + (f"-t{target}" if target else "")
    extra = ["--target-loss", target] if target else []
    out = f"{D}/{tag}-out"
    shutil.rmtree(out, ignore_errors=True)
    ready, rstats, sstats = (f"{D}/{tag}-{f}.json" for f in ("ready", "recv", "send"))
    for f in (ready, rstats, sstats):
        if os.path.exists(f):
            os.remove(f)
    rx = subprocess.Popen([iso, "recv", "--listen", "127.0.0.1:0", "--out", out, "--allow", fp, "--once",
                           "--latency", f"{LATENCY_MS}ms", "--ready-file", ready, "--stats-json", rstats, "--quiet"],
                          env=env, stdout=open(f"{D}/{tag}-recv.txt", "w"), stderr=subprocess.STDOUT)
    started = [rx]
    try:
        wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, "isochron recv ready", rx)
        port = int(json.load(open(ready))["addr"].rsplit(":", 1)[1])
        netem = Netem(iso, link, port, tag)
        started.append(netem.proc)
        tx = subprocess.Popen([iso, "send", wav, "--live", "--recovery", recovery, *extra, "--to",
                               f"127.0.0.1:{netem.port}", "--pin", fp, "--stats-json", sstats, "--quiet"],
                              env=env, stdout=open(f"{D}/{tag}-send.txt", "w"), stderr=subprocess.STDOUT)
        started.append(tx)
        try:
            tcode = tx.wait(SECS + 30)
            rcode = rx.wait(15)
        except subprocess.TimeoutExpired:
            raise RunFailed(f"isochron {recovery} on {link} did not finish ({D}/{tag}-*.txt)")
        fwd, back = netem.finish()
    finally:
        procs.kill_all(started)
    if rcode != 0:
        raise RunFailed(f"isochron recv exited {rcode}, send {tcode} ({D}/{tag}-recv.txt, -send.txt)")
    try:
        rs = json.load(open(rstats))["sessions"][0]["stats"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise RunFailed(f"isochron recv wrote no statistics ({rstats}): {e}")
    note = ""
    sent_again, copies = None, None
    try:
        ss = json.load(open(sstats))["stats"]
        sent_again, copies = ss["retransmit_packets"], ss.get("retransmit_copies")
        fec = ss["repair_bytes"] / max(1, ss["source_bytes"])
        retx = ss["retransmit_bytes"] / max(1, ss["source_bytes"])
        red = ss["redundancy_ratio"]
    except (OSError, ValueError, KeyError) as e:
        if tcode == 0:
            raise RunFailed(f"isochron send wrote no statistics ({sstats}): {e}")
        # The receiver played the stream to its end but the sender failed after it (and then
        # writes no statistics): the redundancy is the receiver's count of what arrived.
        fec, red = rs["fec_overhead_ratio"], rs["redundancy_ratio"]
        retx = red - fec
    if tcode != 0:
        last = open(f"{D}/{tag}-send.txt").read().strip().splitlines()[-1:]
        note = f"send exited {tcode} after the receiver completed ({' '.join(last)[:120]})"
        if not os.path.exists(sstats):
            note += "; redundancy as the receiver counted it"
    p = rs["packets"]
    return {
        # late is the part of unrecovered that arrived after its frame played
        "missing": max(0, p["unrecovered"] - p["late"]), "expected": p["expected"], "late": p["late"], "duplicates": p["duplicate"],
        "residual": rs["residual_loss_ratio"],
        "overhead": red, "fec": fec, "retx": retx, "note": note,
        "lost": p["lost"], "recovered": p["recovered"], "retransmitted": p["retransmitted"],
        "retransmit_late": p["retransmit_late"],
        "nack": rs["nack"],
        # the sender's: packets sent again, and of them the further copies of a last-chance
        # retransmission (None: the sender wrote no statistics)
        "sent_again": sent_again, "copies": copies,
        "recovery": rs["recovery"],
        "fwd": fwd, "back": back,
    }


def pct(x):
    return f"{100 * x:.3f} %" if x else "0"


def main():
    if len(sys.argv) < 2:
        fail("usage: srt_side_by_side.py path/to/isochron [LINK ...]", 2)
    iso = os.path.abspath(sys.argv[1])
    links = sys.argv[2:] or list(LINKS)
    for l in links:
        if l not in LINKS:
            fail(f"no link '{l}' (links: {', '.join(LINKS)})", 2)
    if not (os.path.isfile(iso) and os.access(iso, os.X_OK)):
        fail(f"{iso}: no isochron binary there (build one: cargo build --release --workspace)", 2)
    if not shutil.which("srt-live-transmit"):
        fail("srt-live-transmit is not installed (Debian: apt-get install srt-tools)", 2)
    os.makedirs(D, exist_ok=True)
    env = dict(os.environ, XDG_CONFIG_HOME=f"{D}/xdg")
    try:
        fp = procs.fingerprint(iso, env)
    except RuntimeError as e:
        fail(str(e))
    wav = f"{D}/in.wav"
    make_wav(wav)
    slt = subprocess.run(["srt-live-transmit", "-version"], capture_output=True, text=True)
    print(f"seed {SEED}, {SECS} s of {RATE} Hz stereo L16, latency {LATENCY_MS} ms; "
          f"{(slt.stdout + slt.stderr).strip().splitlines()[-1]}; load {open('/proc/loadavg').read().split()[:3]}")
    rows, failed = [], []
    for link in links:
        for peer, f in (("SRT (ARQ)", lambda: run_srt(iso, link)),
                        ("isochron hybrid", lambda: run_iso(iso, link, "hybrid", wav, env, fp)),
                        (f"isochron hybrid, --target-loss {LOOSE}",
                         lambda: run_iso(iso, link, "hybrid", wav, env, fp, LOOSE)),
                        ("isochron fec", lambda: run_iso(iso, link, "fec", wav, env, fp))):
            try:
                r = f()
            except RunFailed as e:
                print(f"{link} {peer}: FAILED: {e}", flush=True)
                failed.append((link, peer))
                continue
            rows.append((link, peer, r))
            print(f"{link} {peer}: {json.dumps(r)}", flush=True)
    print()
    print("| link | peer | residual: missing + late of sent | redundancy sent | link loss seen fwd / back | from the stats |")
    print("|---|---|---|---|---|---|")
    for link, peer, r in rows:
        res = f"{r['missing']} + {r['late']} of {r['expected']} ({pct(r['residual'])})"
        seen = "{:.2f} % / {:.2f} %".format(*(100 * l / max(1, n) for n, l in (r["fwd"], r["back"])))
        if "fec" in r:
            red = f"{pct(r['overhead'])} (FEC {pct(r['fec'])} + retx {pct(r['retx'])})"
            n = r["nack"]
            why = (f"lost {r['lost']}, back in time {r['recovered']} ({r['retransmitted']} retransmitted, "
                   f"{r['retransmit_late']} of them late); NACK no_time {n['no_time']}, hopeless {n['hopeless']}, "
                   f"overdue {n['overdue']}")
            if r["sent_again"] is not None:
                why += f"; sent again {r['sent_again']} ({r['copies']} of them copies)"
            why += f"; {r['note']}" if r["note"] else ""
        else:
            red = f"{pct(r['overhead'])} ({r['retransmitted']} of {r['unique']} packets again)"
            why = (f"SRT: lost {r['srt_rcv_lost']}, dropped {r['srt_rcv_dropped']}, belated {r['srt_rcv_belated']}; "
                   f"delay p50 {r['delay_p50_ms']:.1f} ms, max {r['delay_max_ms']:.1f} ms")
        print(f"| {LINKS[link][1]} | {peer} | {res} | {red} | {seen} | {why} |")
    print()
    # Issue 13's targets: at most SRT's residual on bursty links and zero on random loss, with
    # redundancy within 1.5x of SRT's.
    by = {(l, p): r for l, p, r in rows}
    for link in links:
        for peer in ("isochron hybrid", f"isochron hybrid, --target-loss {LOOSE}"):
            srt, hyb = by.get((link, "SRT (ARQ)")), by.get((link, peer))
            if not (srt and hyb):
                continue
            bursty = "--burst" in LINKS[link][0]
            want = srt["residual"] if bursty else 0.0
            ok_res = hyb["residual"] <= want
            ratio = hyb["overhead"] / srt["overhead"] if srt["overhead"] else math.inf
            print(f"target {link} ({peer}): residual {pct(hyb['residual'])} vs {'SRT ' + pct(want) if bursty else '0'}: "
                  f"{'met' if ok_res else 'MISSED'}; redundancy {ratio:.2f}x SRT's (at most 1.5x): "
                  f"{'met' if ratio <= 1.5 else 'MISSED'}")
    print("load", open("/proc/loadavg").read().split()[:3])
    if failed:
        fail(f"{len(failed)} run(s) failed: {failed}")


if __name__ == "__main__":
    main()
