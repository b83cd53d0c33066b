"""Domain code of the link without sockets: impairments, schedules, sessions, batching, validation,
the receiver engine against the in-process pipeline."""
from __future__ import annotations

import math
import logging
import threading
import time

import pytest
import torch

from channel_proxy.delayline import DelayLine
from channel_proxy.impairments.kinds.delay import Delay, delay_s
from channel_proxy.impairments.kinds.drop import Drop, is_dropped
from channel_proxy.impairments.kinds.jamming import Jamming
from channel_proxy.noise import add_awgn, add_jamming, apply_channel, combined_noise_std, effective_snr_db
from channel_proxy.snr import SNR_RANGE_DB, check_schedule, parse_schedule_csv, snr_at
from channel_proxy.state import ChannelState
from link_support import make_untrained_checkpoints
from protos.wire import MAX_SYMBOL_AMPLITUDE, bytes_to_image, symbols_to_bytes
from receiver.batcher import MicroBatcher
from receiver.engine import FrameIn, Receiver
from receiver.errors import LinkError
from receiver.policy import Decision, FixedPolicy, make_policy
from receiver.sessions import SessionTable
from receiver.snr import NOISELESS_SNR_DB, measure_snr_db
from receiver.validation import parse_latent, parse_pilot
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline
from shared.row_noise import RowNoise


# --- impairments ---------------------------------------------------------------------------------
def test_awgn_and_jamming_have_the_stated_noise_power():
    g = torch.Generator().manual_seed(0)
    z = pilot_sequence("s", 0, 200_000)
    noise = add_awgn(z, 10.0, g) - z
    assert noise.pow(2).mean().item() == pytest.approx(0.1, rel=0.02)
    jam = add_jamming(z, 10.0, 6.0, g) - z               # 10^(-1) * 10^(0.6)
    assert jam.pow(2).mean().item() == pytest.approx(0.1 * 10 ** 0.6, rel=0.02)
    both = apply_channel(z, 10.0, [6.0], g) - z
    assert both.pow(2).mean().item() == pytest.approx(0.1 * (1 + 10 ** 0.6), rel=0.02)
    assert effective_snr_db(10.0, [6.0]) == pytest.approx(-10 * math.log10(0.1 * (1 + 10 ** 0.6)))
    assert effective_snr_db(7.5) == pytest.approx(7.5)


def test_drop_and_delay_draws():
    assert is_dropped(0.3, 0.29) and not is_dropped(0.3, 0.3) and not is_dropped(0.0, 0.0)
    assert delay_s(50, 10, 0.0) == pytest.approx(0.040)
    assert delay_s(50, 10, 0.5) == pytest.approx(0.050)
    assert delay_s(5, 10, 0.0) == 0.0  # never negative


def test_the_amplitude_bound_leaves_room_for_the_noisiest_channel():
    """The receiver must never refuse what the proxy itself can produce (BAD_AMPLITUDE)."""
    worst_std = combined_noise_std(SNR_RANGE_DB[0], [60.0] * 10)       # lowest SNR, ten strongest jammers
    assert 100 * worst_std < MAX_SYMBOL_AMPLITUDE
    with pytest.raises(ValueError, match="pnr_db"):
        Jamming(60.1).check()                                              # the strongest jammer allowed is 60 dB


def test_stacked_drops_and_delays_compound():
    state = ChannelState(snr_db=15.0, seed=3)
    state.add("", Drop(0.5))
    state.add("", Drop(0.2))
    state.add("", Delay(5, 0))
    state.add("", Delay(7, 0))
    fates = [state.frame_fate() for _ in range(8000)]
    lost = sum(dropped for dropped, _ in fates) / len(fates)
    assert lost == pytest.approx(1 - 0.5 * 0.8, abs=3 * (0.6 * 0.4 / 8000) ** 0.5)   # 1 - prod(1 - p), within 3 SE
    assert all(delay == pytest.approx(0.012) for _, delay in fates)                  # delays add


@pytest.mark.parametrize("spec", [Drop(1.5), Drop(-0.1), Jamming(float("nan")), Delay(-1, 0), Jamming(99)])
def test_bad_impairment_parameters_are_refused(spec):
    with pytest.raises(ValueError):
        spec.check()


def test_snr_schedule():
    points = [(0.0, 15.0), (2.0, -3.0), (5.0, 6.0)]
    assert [snr_at(points, t) for t in (0, 1.9, 2.0, 4.9, 5, 100)] == [15, 15, -3, -3, 6, 6]
    assert snr_at(points, 7.5, period_s=6.0) == 15.0 and snr_at(points, 8.5, period_s=6.0) == -3.0
    assert snr_at([(1.0, 3.0)], 0.0) == 3.0
    with pytest.raises(ValueError):
        check_schedule([(2.0, 1.0), (1.0, 1.0)])
    with pytest.raises(ValueError):
        check_schedule([(0.0, 1.0), (5.0, 2.0)], period_s=4.0)
    with pytest.raises(ValueError):
        check_schedule([])


def test_schedule_csv():
    text = "seconds,snr_db\n# a trace\n0, 12\n\n1.5,-3\n4,9.5\n"
    assert parse_schedule_csv(text) == [(0.0, 12.0), (1.5, -3.0), (4.0, 9.5)]
    assert parse_schedule_csv("0,1\n2,3") == [(0.0, 1.0), (2.0, 3.0)]
    with pytest.raises(ValueError, match="line 3"):
        parse_schedule_csv("t,snr\n0,1\nabc,2\n")
    with pytest.raises(ValueError, match="line 2: expected 'seconds,snr_db'"):  # a third column is not ignored
        parse_schedule_csv("0,1\n0,10,3\n")


def test_channel_state_names_and_stacking():
    state = ChannelState(snr_db=15.0)
    assert state.add("", Drop(0.1)).name == "drop"
    assert state.add("", Drop(0.2)).name == "drop-2"
    with pytest.raises(KeyError):
        state.add("drop", Jamming(3))
    state.add("j", Jamming(0.0))
    assert state.stats()["effective_snr_db"] == pytest.approx(15 - 10 * math.log10(2))
    assert state.remove("drop").name == "drop"
    with pytest.raises(KeyError, match="present: drop-2, j"):
        state.remove("nope")
    for bad in ("a\nb", "x" * 65, "two words"):  # names travel in CLI output and gRPC error messages
        with pytest.raises(ValueError, match="1..64 printable"):
            state.add(bad, Drop(0.1))
    with pytest.raises(KeyError) as err:
        state.remove("y" * 100_000)
    assert len(err.value.args[0]) < 200
    assert state.clear() == 2 and state.list() == []
    state.schedule_snr([(0.0, 3.0), (60.0, 9.0)])
    assert state.snr_db() == 3.0 and state.stats()["snr_scheduled"]
    state.set_snr(-6.0)
    assert state.snr_db() == -6.0 and not state.stats()["snr_scheduled"]


def test_delay_line_orders_by_due_time():
    line: DelayLine = DelayLine()
    line.put("late", 0.08)
    line.put("now", 0.0)
    line.put("soon", 0.03)
    line.close()
    start = time.monotonic()
    assert list(line) == ["now", "soon", "late"]
    assert time.monotonic() - start >= 0.07


# --- receiver domain -------------------------------------------------------------------------------
def test_pilot_snr_estimate():
    g = torch.Generator().manual_seed(1)
    for snr in (-6.0, 0.0, 9.0, 18.0):
        received = add_awgn(pilot_sequence("sess", 4, 4096), snr, g)
        assert measure_snr_db("sess", 4, received) == pytest.approx(snr, abs=0.3)
    assert measure_snr_db("sess", 4, pilot_sequence("sess", 4, 64)) == NOISELESS_SNR_DB
    # The wrong session's pilot reads as noise: two independent +-1 sequences differ by power 2, -3 dB.
    assert measure_snr_db("other", 4, pilot_sequence("sess", 4, 4096)) == pytest.approx(-3.01, abs=0.3)
    # The sender's default 1024-symbol pilot: within the ~0.2 dB the docs state, with margin.
    for snr in (0.0, 9.0, 18.0):
        received = add_awgn(pilot_sequence("sess", 5, 1024), snr, g)
        assert measure_snr_db("sess", 5, received) == pytest.approx(snr, abs=0.5)
    # Far above unit power (a float32 sum of squares would overflow): a finite, very low SNR.
    assert measure_snr_db("sess", 4, torch.full((1024,), 1e30)) < -500


def test_sessions_epochs_and_dedup():
    table = SessionTable(max_epochs=2)
    policy = FixedPolicy(7, 3)
    assert table.sync("a", 10.0, policy).number == 1
    assert table.sync("a", 11.0, policy).number == 2
    assert table.sync("b", 1.0, policy).number == 1
    assert table.epoch("a", 2).t_d == 7 and table.epoch("a", 2).snr_db == 11.0
    table.sync("a", 12.0, policy)
    with pytest.raises(LinkError) as expired:
        table.epoch("a", 1)
    assert expired.value.reason == "EXPIRED_EPOCH" and expired.value.code == "OUT_OF_RANGE"
    with pytest.raises(LinkError) as future:
        table.epoch("a", 9)
    assert future.value.reason == "UNKNOWN_EPOCH"
    with pytest.raises(LinkError) as unknown:
        table.epoch("zzz", 1)
    assert unknown.value.reason == "UNKNOWN_SESSION" and "call Sync first" in unknown.value.message
    _, first, dup = table.admit("a", 3, 42)
    assert not dup
    _, again, dup = table.admit("a", 3, 42)
    assert dup and again is first
    _, other, dup = table.admit("b", 1, 42)  # frame ids are per session
    assert not dup and other is not first


def test_policy_bounds():
    assert make_policy("fixed", 20, 5).choose(3.0, None).t_d == 20
    with pytest.raises(ValueError):
        make_policy("fixed", 990, 20)
    with pytest.raises(ValueError):
        make_policy("bogus", 1, 1)


def test_micro_batcher_groups_concurrent_items():
    sizes = []

    def process(items):
        sizes.append(len(items))
        time.sleep(0.02)
        return [x * 2 for x in items]

    batcher = MicroBatcher(process, max_batch=8, max_wait_ms=20)
    futures = [batcher.submit(i) for i in range(20)]
    assert [f.result(5) for f in futures] == [2 * i for i in range(20)]
    assert max(sizes) == 8 and sum(sizes) == 20 and len(sizes) <= 4
    failing = MicroBatcher(lambda items: 1 / 0, max_batch=4, max_wait_ms=1)
    with pytest.raises(ZeroDivisionError):
        failing.submit(1).result(5)
    assert failing.submit(2).exception(5) is not None  # the worker survives a failed batch
    batcher.close()
    failing.close()


def test_micro_batcher_keeps_a_trickling_burst_whole_and_runs_on_the_callers_thread():
    """Items 10 ms apart (a burst through the proxy) stay one batch: the wait is a quiet gap, not a deadline."""
    sizes, threads = [], []

    def process(items):
        sizes.append(len(items))
        threads.append(threading.current_thread())
        return items

    batcher = MicroBatcher(process, max_batch=8, max_wait_ms=60, start=False)
    runner = threading.Thread(target=batcher.run)  # the owner's loop (the receiver uses its main thread)
    runner.start()
    futures = []
    for i in range(8):  # 80 ms in all: a 60 ms deadline from the first item would have split it
        futures.append(batcher.submit(i))
        time.sleep(0.010)
    assert [f.result(5) for f in futures] == list(range(8))
    lone = batcher.submit(99)  # then a lone item leaves after one quiet gap
    assert lone.result(5) == 99
    batcher.close()
    runner.join(5)
    assert sizes == [8, 1] and set(threads) == {runner} and not runner.is_alive()


def test_validation_messages():
    good = symbols_to_bytes(torch.zeros(768))
    assert parse_latent(good, [1, 768], "float32", 768, 1 << 20).shape == (768,)
    cases = [
        (dict(data=good, shape=[700]), "BAD_SHAPE", "expected [768]"),
        (dict(data=good, dtype="float64"), "BAD_DTYPE", "float32"),
        (dict(data=good + good), "BAD_LENGTH", "float64"),
        (dict(data=symbols_to_bytes(torch.full((768,), float("nan")))), "NON_FINITE", "768 NaN"),
        (dict(data=b"\0" * (2 << 20)), "TOO_LARGE", "exceeds"),
    ]
    for overrides, reason, text in cases:
        args = {"data": good, "shape": [768], "dtype": "float32", **overrides}
        with pytest.raises(LinkError) as err:
            parse_latent(args["data"], args["shape"], args["dtype"], 768, 1 << 20, "cifar10")
        assert err.value.reason == reason and text in err.value.message
    with pytest.raises(LinkError, match="16..65536"):
        parse_pilot(symbols_to_bytes(torch.ones(4)))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    return Pipeline.load("cifar10", make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt")))


def test_engine_matches_the_in_process_pipeline(pipeline):
    """Same latents, same seed: the receiver's batch (mixed t_D) equals decode -> purify -> classify."""
    receiver = Receiver(pipeline, FixedPolicy(3, 1), max_batch=4, max_wait_ms=50, seed=7)
    try:
        t_ds = [3, 0, 5]  # frames diffused under three epochs' t_D share one batch
        epochs = []
        for sequence, t_d in enumerate(t_ds):
            receiver.policy.decision = Decision(t_d, 1)
            epochs.append(receiver.sync("s", sequence, symbols_to_bytes(pilot_sequence("s", sequence, 256))))
        z = pipeline.encode(pipeline.diffuse(torch.rand(3, 3, 32, 32), 3, torch.Generator().manual_seed(0)))
        futures = [receiver.submit(FrameIn(i, "s", epochs[i].number, t_ds[i], symbols_to_bytes(z[i]), (768,),
                                           "float32", 1))[0] for i in range(3)]
        acks = [f.result(60) for f in futures]
    finally:
        receiver.close()
    assert receiver.batcher.largest == 3
    assert [a.t_p for a in acks] == [4, 1, 6]
    noise = RowNoise.for_keys([(7, "purify", i) for i in range(3)])   # per frame: seed, frame id
    expected = pipeline.purify(pipeline.decode(z), torch.tensor([4, 1, 6]), "ddpm", 5, noise)
    classes = pipeline.classify(expected).argmax(1)
    for i, ack in enumerate(acks):
        assert ack.predicted_class == int(classes[i])
        got = bytes_to_image(ack.image, ack.image_shape)
        assert (got - expected[i]).abs().max().item() <= 0.5 / 255 + 1e-6  # uint8 rounding only


def test_engine_dedups_frame_ids(pipeline):
    receiver = Receiver(pipeline, FixedPolicy(1, 0), max_batch=4, max_wait_ms=1)
    try:
        epoch = receiver.sync("s", 0, symbols_to_bytes(pilot_sequence("s", 0, 64)))
        frame = FrameIn(5, "s", epoch.number, 1, symbols_to_bytes(torch.randn(768)), (768,), "", None)
        first, dup1 = receiver.submit(frame)
        second, dup2 = receiver.submit(frame)
        assert (dup1, dup2) == (False, True) and first.result(30) == second.result(30)
        assert receiver.frames_processed == 1 and receiver.duplicates == 1
        assert first.result().image == b""  # no label: no image back
    finally:
        receiver.close()


def test_after_sync_prefetches_and_logs_adaptive_decisions(pipeline, caplog):
    """Adaptive policies are logged per Sync, after the reply (not on the Sync's path); fixed ones are not."""

    class Stepping:  # a stand-in adaptive policy: t_D grows by one per Sync
        name = "ddpg"

        def __init__(self):
            self.prefetched = []

        def choose(self, snr_db, previous):
            return Decision((previous.t_d if previous else 20) + 1, 0)

        def prefetch(self, decision):
            self.prefetched.append(decision)

    for policy, logged in ((Stepping(), True), (FixedPolicy(1, 0), False)):
        receiver = Receiver(pipeline, policy, max_batch=4, max_wait_ms=1)
        try:
            with caplog.at_level(logging.INFO, logger="diffusec.receiver"):
                caplog.clear()
                epoch = receiver.sync("s", 0, symbols_to_bytes(pilot_sequence("s", 0, 64)))
                assert "(t_D, t_plus)" not in caplog.text  # nothing on the Sync's own path
                receiver.after_sync("s", 0, 64, epoch)
            assert ("(t_D, t_plus) = (21, 0) [policy ddpg]" in caplog.text) is logged
            if logged:
                assert policy.prefetched == [Decision(21, 0)]
        finally:
            receiver.close()


def test_concurrent_submitters_share_batches(pipeline):
    receiver = Receiver(pipeline, FixedPolicy(1, 0), max_batch=8, max_wait_ms=30)
    try:
        epochs = {s: receiver.sync(s, 0, symbols_to_bytes(pilot_sequence(s, 0, 64))).number for s in "abcd"}
        results = []

        def send(session):
            f, _ = receiver.submit(FrameIn(0, session, epochs[session], 1, symbols_to_bytes(torch.randn(768)),
                                           (768,), "float32", None))
            results.append(f.result(30))

        threads = [threading.Thread(target=send, args=(s,)) for s in "abcd"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 4 and receiver.batcher.largest >= 2
    finally:
        receiver.close()
