"""Event simulator: noise rate, polarity, threshold crossings, timing, refractory period."""
from hybrid_pose_ros.data.simulator import EventSimulator, SimulatorConfig
import numpy as np
import pytest


def _config(**kw):
    base = {'width': 64, 'height': 48, 'c_sigma': 0.0, 'noise_rate_hz': 0.0, 'refractory_us': 0}
    base.update(kw)
    return SimulatorConfig(**base)


def _edge_frames(cfg, positions, bright=0.8, dark=0.1, moving_right=True):
    """Frames of a bright half-plane whose edge is at column ``pos`` (anti-aliased)."""
    cols = np.arange(cfg.width) + 0.5
    frames = []
    for pos in positions:
        cover = np.clip(pos - cols + 0.5, 0.0, 1.0)
        if not moving_right:
            cover = 1.0 - cover
        row = dark + (bright - dark) * cover
        frames.append(np.tile(row, (cfg.height, 1)))
    return np.array(frames)


def test_static_scene_gives_noise_at_the_set_rate():
    rate = 2.0
    cfg = _config(width=100, height=100, noise_rate_hz=rate, refractory_us=100)
    sim = EventSimulator(cfg, seed=3)
    frames = np.full((101, 100, 100), 0.4)
    times = np.arange(101) * 10_000                   # 1 s
    ev = sim.simulate(frames, times)
    expected = rate * 100 * 100 * 1.0
    assert abs(len(ev) - expected) < 5 * np.sqrt(expected)
    assert 0.45 < ev['p'].mean() < 0.55
    quiet = EventSimulator(_config(width=100, height=100), seed=3).simulate(frames, times)
    assert len(quiet) == 0


def test_bright_edge_moving_onto_dark_gives_on_events_at_the_leading_edge():
    cfg = _config(c_pos=0.2, c_neg=0.2)
    frames = _edge_frames(cfg, np.arange(10.0, 30.0, 0.5))
    times = np.arange(len(frames)) * 1000
    ev = EventSimulator(cfg).simulate(frames, times)
    assert len(ev) > 0 and np.all(ev['p'] == 1)
    assert ev['x'].min() >= 9 and ev['x'].max() <= 30
    # each fully swept pixel fires floor(log contrast / C) times
    counts = np.bincount(ev['x'][ev['y'] == 0], minlength=cfg.width)
    expected = int(np.floor(np.log((0.8 + cfg.eps) / (0.1 + cfg.eps)) / 0.2))
    assert np.all(counts[12:28] == expected)
    # the leading edge moves right: mean event column grows with time
    early = ev['x'][ev['t'] < times[-1] / 3].mean()
    late = ev['x'][ev['t'] > 2 * times[-1] / 3].mean()
    assert late > early + 5


def test_dark_edge_gives_off_events():
    cfg = _config()
    frames = _edge_frames(cfg, np.arange(10.0, 20.0, 0.5), moving_right=False)
    ev = EventSimulator(cfg).simulate(frames, np.arange(len(frames)) * 1000)
    assert len(ev) > 0 and np.all(ev['p'] == 0)


def test_crossing_times_are_interpolated():
    cfg = _config(width=1, height=1, c_pos=0.2, eps=0.0)
    sim = EventSimulator(cfg)
    sim.reset(np.full((1, 1), 1.0), 0)
    ev = sim.step(np.full((1, 1), np.exp(1.0)), 1000)  # log goes 0 -> 1 in 1 ms
    np.testing.assert_allclose(ev['t'], [200, 400, 600, 800, 1000], atol=1)
    assert np.all(ev['p'] == 1)
    # the reference is kept: a further +0.1 gives nothing, +0.2 more gives one event
    assert len(sim.step(np.full((1, 1), np.exp(1.1)), 2000)) == 0
    assert len(sim.step(np.full((1, 1), np.exp(1.25)), 3000)) == 1


def test_per_pixel_thresholds_spread():
    sim = EventSimulator(SimulatorConfig(c_pos=0.25, c_sigma=0.03), seed=1)
    assert sim.c_pos.mean() == pytest.approx(0.25, abs=0.005)
    assert sim.c_pos.std() == pytest.approx(0.03, abs=0.005)
    assert not np.allclose(sim.c_pos, sim.c_neg)


def test_time_order_and_refractory_period():
    refr = 300
    cfg = _config(width=32, height=32, c_sigma=0.03, refractory_us=refr, noise_rate_hz=50.0)
    rng = np.random.default_rng(0)
    frames = rng.uniform(0.01, 1.0, size=(40, 32, 32))
    times = np.arange(40) * 1000
    ev = EventSimulator(cfg, seed=2).simulate(frames, times)
    assert len(ev) > 1000
    assert np.all(np.diff(ev['t']) >= 0)
    assert ev['t'].min() > 0 and ev['t'].max() <= times[-1]
    pix = ev['y'].astype(np.int64) * 32 + ev['x']
    order = np.lexsort((ev['t'], pix))
    same = pix[order][1:] == pix[order][:-1]
    gaps = np.diff(ev['t'][order])[same]
    assert gaps.min() >= refr
    free = EventSimulator(_config(width=32, height=32, c_sigma=0.03), seed=2)
    assert len(free.simulate(frames, times)) > len(ev)


def test_streaming_in_chunks_matches_one_call():
    cfg = _config(noise_rate_hz=5.0, c_sigma=0.03, refractory_us=200)
    frames = _edge_frames(cfg, np.arange(5.0, 40.0, 0.7))
    times = np.arange(len(frames)) * 1000
    whole = EventSimulator(cfg, seed=7).simulate(frames, times)
    sim = EventSimulator(cfg, seed=7)
    parts = [sim.simulate(frames[:20], times[:20]), sim.simulate(frames[20:], times[20:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_step_checks_inputs():
    sim = EventSimulator(_config())
    with pytest.raises(RuntimeError):
        sim.step(np.zeros((48, 64)), 10)
    sim.reset(np.zeros((48, 64)), 10)
    with pytest.raises(ValueError):
        sim.step(np.zeros((48, 64)), 10)
    with pytest.raises(ValueError):
        sim.step(np.zeros((4, 4)), 20)


def test_leak_adds_on_events():
    cfg = _config(width=20, height=20, leak_rate_hz=5.0)
    frames = np.full((206, 20, 20), 0.5)
    ev = EventSimulator(cfg).simulate(frames, np.arange(206) * 10_000)   # 2.05 s
    assert np.all(ev['p'] == 1)
    assert len(ev) == 10 * 400
