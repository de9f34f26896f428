"""runtime/malloc.py: freed tensor memory goes back to the OS (the eval's peak RSS on the CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# 20 rounds of one 170 x 49,152 float32 logits block (32 MiB, the scoring chunk of the default model)
# computed and freed; prints the RSS growth in MB after the loop
PROBE = r"""
import json, sys
from evalkit.runtime.malloc import keep_rss_low
applied = keep_rss_low()
import torch
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
w, h = torch.randn(49152, 576), torch.randn(170, 576)
torch.nn.functional.linear(h, w)
start = rss()
for _ in range(20):
    y = torch.nn.functional.linear(h, w)
    del y
print(json.dumps({"applied": applied, "growth_mb": rss() - start}))
"""


def _probe(env_extra: dict) -> dict:
    import os

    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning (Linux only)")
def test_freed_logits_are_given_back_and_the_opt_out_shows_why():
    tuned = _probe({})
    if not tuned["applied"]:
        pytest.skip("not glibc: keep_rss_low does nothing here")
    # one block (32 MiB) may stay mapped; 20 retained blocks would be 640 MiB
    assert tuned["growth_mb"] < 40, tuned
    plain = _probe({"EVALKIT_MALLOC": "default"})
    assert plain["applied"] is False
    if plain["growth_mb"] < 100:
        pytest.skip(f"this glibc gives the memory back by itself (+{plain['growth_mb']:.0f} MB untuned)")
    assert plain["growth_mb"] > 3 * max(tuned["growth_mb"], 1.0)


def test_user_settings_are_respected(monkeypatch):
    from evalkit.runtime import malloc

    monkeypatch.setattr(malloc, "_done", [])
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert malloc.keep_rss_low() is False  # the user's own threshold stays
