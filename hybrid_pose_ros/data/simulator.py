"""
Event-camera model (ESIM / v2e style) driven by rendered intensity frames.

Per pixel: log intensity ``L = log(I + eps)``; ON/OFF contrast thresholds ``C+``, ``C-`` drawn
once per pixel from normal distributions (mean, sigma; clipped at ``c_min``); a memorised
reference level ``ref``. Between two frames ``L`` is interpolated linearly in time and every
crossing of ``ref + k C+`` (or ``ref - k C-``) produces one event at the interpolated crossing
time (integer microseconds), so a pixel may fire several times per frame interval.

Refractory period: after an emitted event a pixel drops every event (signal or noise) for
``refractory_us``. As in v2e, the reference still advances over the dropped crossings, so a
pixel does not fire a catch-up burst when its refractory period ends (it loses those events).

Photoreceptor bandwidth (``cutoff_hz`` > 0): the pixel sees its log intensity through a
first-order low-pass whose cutoff scales with the light, ``cutoff_hz * I`` (I in (0, 1], floored
at ``min_cutoff_fraction``), as in v2e: dark, fast edges are smeared and delayed, bright ones
are not. Applied once per frame interval (exact for a signal held over the interval) to the
pixels whose level changes.

Background activity: Poisson at ``noise_rate_hz`` per pixel, plus shot noise that grows in the
dark (``shot_noise_rate_hz * (1 - I)``), random polarity, uniform times; these events do not
move the reference. Hot pixels: a fraction ``hot_pixel_fraction`` of the pixels fires at
``hot_pixel_rate_hz`` more (DHP19's hot-pixel filter exists for them). Leak: the reference drifts
down by ``leak_rate_hz * C+`` per second, which adds ON events at about that rate per pixel.

:func:`random_config` draws every parameter per recording from ranges that bracket a DAVIS346
in an indoor lab.

State (levels, references, last event times, random generator) is kept between calls to
:meth:`EventSimulator.step`, so a long clip can be streamed in chunks of frames.
"""
from dataclasses import dataclass, replace

from hybrid_pose_ros.events.event_array import EVENT_DTYPE, make_events
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
import numpy as np


@dataclass(frozen=True)
class SimulatorConfig:
    """Sensor parameters (defaults: a DAVIS346 in an indoor scene)."""

    width: int = DHP19_WIDTH
    height: int = DHP19_HEIGHT
    c_pos: float = 0.25
    c_neg: float = 0.25
    c_sigma: float = 0.03
    c_min: float = 0.01
    refractory_us: int = 200
    noise_rate_hz: float = 0.1
    leak_rate_hz: float = 0.0
    eps: float = 0.02
    cutoff_hz: float = 0.0
    min_cutoff_fraction: float = 0.05
    shot_noise_rate_hz: float = 0.0
    hot_pixel_fraction: float = 0.0
    hot_pixel_rate_hz: float = 0.0


def random_config(rng: np.random.Generator, base: SimulatorConfig = SimulatorConfig()
                  ) -> SimulatorConfig:
    """
    Draw the sensor of one recording, every parameter uniform in a plausible range.

    Thresholds and their per-pixel mismatch, refractory period, bandwidth, leak, background
    activity, shot noise and hot pixels.
    """
    threshold = rng.uniform(0.18, 0.45)
    return replace(
        base, c_pos=threshold * rng.uniform(0.9, 1.1), c_neg=threshold * rng.uniform(0.9, 1.1),
        c_sigma=threshold * rng.uniform(0.05, 0.2), refractory_us=int(rng.uniform(100, 1500)),
        cutoff_hz=rng.uniform(80.0, 400.0), leak_rate_hz=rng.uniform(0.0, 0.2),
        noise_rate_hz=rng.uniform(0.03, 0.3), shot_noise_rate_hz=rng.uniform(0.0, 0.3),
        hot_pixel_fraction=rng.uniform(0.0, 3e-4), hot_pixel_rate_hz=rng.uniform(10.0, 100.0))


LOW_PASS_SKIP = 1e-4
"""Log-intensity changes below this skip the low-pass (far below any contrast threshold)."""


class EventSimulator:
    """Streams events from frames; call :meth:`reset` once, then :meth:`step` per frame."""

    def __init__(self, config: SimulatorConfig = SimulatorConfig(), seed: int = 0):
        self.config = config
        self.rng = np.random.default_rng(seed)
        n = config.width * config.height
        self.c_pos = np.maximum(config.c_min,
                                self.rng.normal(config.c_pos, config.c_sigma, n))
        self.c_neg = np.maximum(config.c_min,
                                self.rng.normal(config.c_neg, config.c_sigma, n))
        self.hot = (self.rng.random(n) < config.hot_pixel_fraction if config.hot_pixel_fraction > 0
                    else np.zeros(n, dtype=bool))
        self.level: np.ndarray | None = None
        self.ref: np.ndarray | None = None
        self.brightness: np.ndarray | None = None
        self.last_event = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.t_us: int | None = None

    def log_intensity(self, frame: np.ndarray) -> np.ndarray:
        """``log(I + eps)`` of a frame (H, W), flattened."""
        frame = np.asarray(frame, dtype=np.float64)
        if frame.shape != (self.config.height, self.config.width):
            raise ValueError(f'frame shape {frame.shape} != '
                             f'{(self.config.height, self.config.width)}')
        return np.log(frame.ravel() + self.config.eps)

    def reset(self, frame: np.ndarray, t_us: int) -> None:
        """Start at ``frame``, time ``t_us``: references = current log intensity, no events."""
        self.level = self.log_intensity(frame)
        self.brightness = np.exp(self.level)
        self.ref = self.level.copy()
        self.t_us = int(t_us)

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Events in ``(t_prev, t_us]`` as the scene goes to ``frame``, time-sorted."""
        if self.level is None:
            raise RuntimeError('call reset() before step()')
        t0, t1 = self.t_us, int(t_us)
        if t1 <= t0:
            raise ValueError(f'time must increase: {t1} <= {t0}')
        dt = t1 - t0
        new = self.log_intensity(frame)
        old = self.level
        self.brightness = np.exp(new)
        if self.config.cutoff_hz > 0:
            moving = np.flatnonzero(np.abs(new - old) > LOW_PASS_SKIP)
            filtered = new.copy()
            filtered[moving] = old[moving] + self._low_pass_gain(dt, moving) * (
                new[moving] - old[moving])
            new = filtered
        if self.config.leak_rate_hz > 0:
            self.ref -= self.config.leak_rate_hz * self.c_pos * dt * 1e-6

        up = new - self.ref
        n_on = np.floor(np.maximum(up, 0.0) / self.c_pos).astype(np.int64)
        n_off = np.floor(np.maximum(-up, 0.0) / self.c_neg).astype(np.int64)
        counts = n_on + n_off
        pix = np.flatnonzero(counts)
        cnt = counts[pix]
        rep = np.repeat(pix, cnt)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
        on = np.repeat(n_on[pix] > 0, cnt)
        step_size = np.where(on, self.c_pos[rep], -self.c_neg[rep])
        crossing = self.ref[rep] + k * step_size
        slope = new[rep] - old[rep]
        frac = np.clip((crossing - old[rep]) / np.where(slope == 0, 1.0, slope), 0.0, 1.0)
        sig_t = t0 + np.maximum(1, np.ceil(frac * dt)).astype(np.int64)
        self.ref[pix] += np.where(n_on[pix] > 0, n_on[pix] * self.c_pos[pix],
                                  -n_off[pix] * self.c_neg[pix])
        self.level = new

        noise_pix = self._noise_pixels(dt)
        n_noise = len(noise_pix)
        noise_t = t0 + self.rng.integers(1, dt + 1, n_noise)
        noise_p = self.rng.integers(0, 2, n_noise).astype(bool)

        cand_pix = np.concatenate([rep, noise_pix])
        cand_t = np.concatenate([sig_t, noise_t])
        cand_p = np.concatenate([on, noise_p])
        self.t_us = t1
        if len(cand_pix) == 0:
            return np.empty(0, dtype=EVENT_DTYPE)
        keep = self._refractory(cand_pix, cand_t)
        cand_pix, cand_t, cand_p = cand_pix[keep], cand_t[keep], cand_p[keep]
        order = np.argsort(cand_t, kind='stable')
        cand_pix, cand_t, cand_p = cand_pix[order], cand_t[order], cand_p[order]
        y, x = np.divmod(cand_pix, self.config.width)
        return make_events(cand_t, x, y, cand_p.astype(np.uint8))

    def _low_pass_gain(self, dt_us: int, pixels: np.ndarray) -> np.ndarray:
        """Gain of the photoreceptor low-pass of ``pixels`` over ``dt_us`` (1: no smear)."""
        light = np.clip(self.brightness[pixels], self.config.min_cutoff_fraction,
                        1.0).astype(np.float32)
        light *= np.float32(-2.0 * np.pi * self.config.cutoff_hz * dt_us * 1e-6)
        return -np.expm1(light)

    def _noise_pixels(self, dt_us: int) -> np.ndarray:
        """Pixels of the noise events of an interval: background, shot noise, hot pixels."""
        n = len(self.level)
        seconds = dt_us * 1e-6
        background = self.rng.integers(0, n, self.rng.poisson(
            self.config.noise_rate_hz * seconds * n))
        parts = [background]
        if self.config.shot_noise_rate_hz > 0:
            # thinning: candidates at the darkest pixel's rate, kept with probability 1 - I
            candidates = self.rng.integers(0, n, self.rng.poisson(
                self.config.shot_noise_rate_hz * seconds * n))
            keep = self.rng.random(len(candidates)) < 1.0 - np.clip(
                self.brightness[candidates], 0.0, 1.0)
            parts.append(candidates[keep])
        hot = np.flatnonzero(self.hot)
        if len(hot):
            counts = self.rng.poisson(self.config.hot_pixel_rate_hz * seconds, len(hot))
            parts.append(np.repeat(hot, counts))
        return np.concatenate(parts)

    def _refractory(self, pix: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Mask of candidates kept by the per-pixel refractory filter; updates last times."""
        refr = self.config.refractory_us
        order = np.lexsort((t, pix))
        sp, st = pix[order], t[order]
        first = np.r_[True, sp[1:] != sp[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(sp)), 0))
        rank = np.arange(len(sp)) - group_start
        keep_sorted = np.zeros(len(sp), dtype=bool)
        if refr <= 0:
            keep_sorted[:] = True
        else:
            for r in range(int(rank.max()) + 1):
                idx = np.flatnonzero(rank == r) if r else np.flatnonzero(first)
                ok = st[idx] - self.last_event[sp[idx]] >= refr
                keep_sorted[idx[ok]] = True
                self.last_event[sp[idx[ok]]] = st[idx[ok]]
        if refr <= 0:
            np.maximum.at(self.last_event, sp, st)
        keep = np.empty(len(sp), dtype=bool)
        keep[order] = keep_sorted
        return keep

    def simulate(self, frames: np.ndarray, times_us: np.ndarray) -> np.ndarray:
        """All events of a frame sequence; resets on the first frame if not yet started."""
        start = 0
        if self.level is None:
            self.reset(frames[0], int(times_us[0]))
            start = 1
        chunks = [self.step(frames[i], int(times_us[i])) for i in range(start, len(frames))]
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=EVENT_DTYPE)
