"""Process helpers the peers scripts share (beside media.py, the shared test
signal): the fingerprint of the isochron identity a run uses, and the kill
loop that ends whatever a run started."""
import re, subprocess


def fingerprint(iso, env):
    """The `sha256:...` fingerprint `iso id` prints for the identity under
    env's XDG_CONFIG_HOME (made on first use). RuntimeError if it prints
    none."""
    r = subprocess.run([iso, "id"], env=env, capture_output=True, text=True)
    m = re.search(r"sha256:[0-9a-f]+", r.stdout)
    if not m:
        raise RuntimeError(f"`{iso} id` printed no fingerprint: {r.stdout}{r.stderr}")
    return m.group(0)


def kill_all(procs):
    """Kill and reap each of `procs` still running (a run's cleanup, in a
    `finally`: the ones that ended are left as they are)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
