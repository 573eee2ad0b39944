#!/usr/bin/env python3
"""Instructions per datagram and per session-frame on the receiver, counted
with callgrind (repeatable on a loaded machine, unlike CPU time).

    python3 benches/peers/callgrind_scale.py target/release/isochron [SESSIONS] [SECONDS]

Runs `isochron bench --scenario scale` (default 2 sessions x 3 s) with the
bench process (the receiver) under `valgrind --tool=callgrind
--separate-threads=yes`; the senders' process it starts runs natively. The
real-time scheduling the threads ask for is refused (CAP_SYS_NICE dropped
with setpriv) and the run is niced, so valgrind's serialised threads do not
take a core at real-time priority. Then, per thread file:

- the receiver's network thread (the one running `run_session`): its
  instructions over the datagrams it handled (calls of `Ingress::on_datagram`);
- the playout workers (running `Worker::run`): their instructions over the
  session serves (calls of `Session::serve`; one a frame while playing).

Prints one JSON object. Ratios between two builds are the figure to quote:
absolute counts include start-up (handshakes, allocation of every buffer).
Check the bench's results.json in the printed directory first: valgrind runs
the receiver's threads one at a time, and if the run did not keep real time
(concealed frames, late packets) the counts describe a receiver draining a
backlog, not its steady state, and are not comparable.
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile


def parse(path):
    """Total instructions, and calls by callee name substring lookup table."""
    names = {}
    calls = {}
    total = 0
    cfn = None
    fn_names = set()
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                key, _, rest = line.partition("=")
                rest = rest.strip()
                m = re.match(r"\((\d+)\)(?: (.*))?", rest)
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    name = names.get(m.group(1), "?")
                else:
                    name = rest
                if key == "cfn":
                    cfn = name
                else:
                    fn_names.add(name)
            elif line.startswith("calls="):
                n = int(line.split("=", 1)[1].split()[0])
                calls[cfn] = calls.get(cfn, 0) + n
            elif line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total, calls, fn_names


def count(calls, pattern):
    return sum(n for name, n in calls.items() if pattern in name)


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/isochron"
    sessions = sys.argv[2] if len(sys.argv) > 2 else "2"
    seconds = sys.argv[3] if len(sys.argv) > 3 else "3"
    out = tempfile.mkdtemp(prefix="isochron-callgrind-")
    cmd = [
        "setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice",
        "nice", "-n", "10",
        "valgrind", "--tool=callgrind", "--separate-threads=yes",
        f"--callgrind-out-file={out}/cg.%p",
        exe, "bench", "--scenario", "scale", "--sessions", sessions,
        "--duration", f"{seconds}s", "--out", os.path.join(out, "bench"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-4000:])
        sys.exit(run.returncode)
    net = {"instructions": 0, "datagrams": 0}
    play = {"instructions": 0, "serves": 0}
    for path in sorted(glob.glob(f"{out}/cg.*")):
        total, calls, fns = parse(path)
        if any("run_session" in n for n in fns):
            net["instructions"] += total
            net["datagrams"] += count(calls, "Ingress::on_datagram")
        elif any("Worker::run" in n for n in fns):
            play["instructions"] += total
            play["serves"] += count(calls, "session::Session::serve")
    result = {
        "sessions": int(sessions),
        "seconds": float(seconds),
        "network_thread": net,
        "playout_workers": play,
        "instructions_per_datagram": net["instructions"] / max(net["datagrams"], 1),
        "instructions_per_serve": play["instructions"] / max(play["serves"], 1),
        "files": out,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
