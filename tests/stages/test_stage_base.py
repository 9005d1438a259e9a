"""The Stage contract: bad samples become rejects, flaky backends are retried, hangs time out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from stages.base import Resources, Sample, Stage


@dataclass
class Flaky(Stage):
    """Fails on samples named 'bad' always, on 'flaky' the first time only; 'slow' hangs."""

    calls: dict = field(default_factory=dict)
    setups: int = 0

    def setup(self) -> None:
        self.setups += 1

    def process(self, batch):
        for s in batch:
            s.meta["touched"] = True
            n = self.calls[s.id] = self.calls.get(s.id, 0) + 1
            if s.id == "bad" or (s.id == "flaky" and n == 1):
                raise RuntimeError(f"backend exploded on {s.id}")
            if s.id == "slow":
                time.sleep(5)
            s.meta["ok"] = True
        return batch


def _batch(*ids):
    return [Sample(id=i, source={}) for i in ids]


def test_one_bad_sample_does_not_take_its_batch_down():
    st = Flaky(retries=1)
    out = {s.id: s for s in st(_batch("a", "bad", "b"))}
    assert out["a"].meta == {"touched": True, "ok": True} and out["b"].meta["ok"]
    assert out["bad"].rejected and out["bad"].reason == "stage_error"
    assert "exploded" in out["bad"].errors[-1]["detail"] and "2 attempt" in out["bad"].errors[-1]["detail"]
    assert st.calls["bad"] == 3  # once in the batch, then 1 + retries alone


def test_flaky_backend_recovers_on_retry_and_state_is_rolled_back():
    st = Flaky(retries=1)
    (s,) = st(_batch("flaky"))
    assert not s.rejected and s.meta == {"touched": True, "ok": True} and st.calls["flaky"] == 2


def test_hang_past_timeout_is_rejected_and_state_rebuilt():
    st = Flaky(timeout_s=0.3)
    t = time.perf_counter()
    out = st(_batch("slow", "a"))
    assert time.perf_counter() - t < 3
    assert {s.reason for s in out} == {"timeout"}
    assert all("touched" not in s.meta for s in out)  # copies from before the hung call
    (a,) = st(_batch("a"))
    assert a.meta["ok"] and st.setups == 1  # setup() ran again after the hang


def test_rejected_samples_pass_through_untouched():
    st = Flaky()
    s = Sample(id="x", source={}).reject("earlier", stage="Before")
    (out,) = st([s])
    assert out.reason == "earlier" and "x" not in st.calls


def test_resources_validate():
    with pytest.raises(ValueError):
        Resources(cpus=-1)
    with pytest.raises(ValueError):
        Resources(cpus=0, gpus=0)
    assert Resources(cpus=0.25).cpus == 0.25
