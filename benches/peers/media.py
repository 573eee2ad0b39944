"""The test signal the peers scripts send: 48 kHz stereo, two tones plus a
little seeded noise, written once per path and reused (the same bytes every
run, so runs compare)."""
import math, os, random, struct, wave


def make_wav(path, secs, rate=48000):
    if os.path.exists(path):
        return
    rnd = random.Random(1)
    frames = bytearray()
    for i in range(rate * secs):
        t = i / rate
        l = 0.3 * math.sin(2 * math.pi * 440 * t) + 0.1 * (rnd.random() - 0.5)
        r = 0.3 * math.sin(2 * math.pi * 554 * t) + 0.1 * (rnd.random() - 0.5)
        frames += struct.pack("<hh", int(l * 32767), int(r * 32767))
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
