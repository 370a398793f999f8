//! The per-room mixer: wires jitter buffers, speaker selection, decoding,
//! mixing and the K+1 encodes together, one tick at a time.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{self, MixerConfig};
use crate::decode::{DTX_MAX_BYTES, DecodeCounters, SourceDecoder};
use crate::encode::{EncoderSettings, StreamEncoder};
use crate::jitter::{Adjust, Insert, JitterBuffer};
use crate::level::{ActivityDetector, DetectorConfig, TalkEdge, is_quiet};
use crate::limiter::to_i16;
use crate::mix::{self, Pcm, SILENCE};
use crate::output::{MixerEvent, ProgramFrame, Route, StreamKind, Tick, TickStream};
use crate::packet::{
    AudioLevel, AudioPacket, DropReason, ListenerId, PushOutcome, SourceId, opus_duration,
};
use crate::phase::{self, PhaseLock};
use crate::speakers::{Candidate, Selector, SelectorConfig, SlotState};
use crate::stats::{MixerStats, SourceStats};
use crate::{FRAME_DURATION, FRAME_SAMPLES};

/// Frames of full-mix history used to warm up a slot encoder.
const WARMUP_FRAMES: usize = 3;
/// Fade-in of a newly selected speaker (5 ms; its decoder is primed, so this
/// only has to hide the cut into a running waveform).
const FADE_IN: usize = 240;

/// The mixer could not set up its codecs.
#[derive(Debug)]
pub struct MixerError(String);

impl fmt::Display for MixerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mixer setup failed: {}", self.0)
    }
}

impl std::error::Error for MixerError {}

#[derive(Debug)]
struct Source {
    id: SourceId,
    jb: JitterBuffer,
    det: ActivityDetector,
    dec: SourceDecoder,
    fade_in: bool,
    stats: SourceStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKey {
    Full,
    Slot(usize),
}

#[derive(Debug)]
struct Listener {
    id: ListenerId,
    own: Option<SourceId>,
    seq: u16,
    joined: u64,
    last: Option<StreamKey>,
}

#[derive(Debug)]
struct SlotOut {
    encoder: StreamEncoder,
    contrib: Pcm,
    /// Source whose mix-minus this encoder produced last tick.
    encoded_for: Option<SourceId>,
}

/// A sans-IO audio mixer for one room. See the crate docs.
pub struct Mixer {
    cfg: MixerConfig,
    det_cfg: DetectorConfig,
    epoch: Instant,
    next_index: u64,
    sources: Vec<Source>,
    source_index: HashMap<SourceId, usize>,
    listeners: Vec<Listener>,
    listener_index: HashMap<ListenerId, usize>,
    selector: Selector,
    full: StreamEncoder,
    slots: Vec<SlotOut>,
    full_history: VecDeque<Pcm>,
    stats: MixerStats,
    pending_events: Vec<MixerEvent>,
    jitter_min: i64,
    jitter_max: i64,
    phase: PhaseLock,
}

impl fmt::Debug for Mixer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mixer")
            .field("sources", &self.sources.len())
            .field("listeners", &self.listeners.len())
            .field("next_index", &self.next_index)
            .field("stats", &self.stats)
            .finish()
    }
}

fn add_counters(stats: &mut MixerStats, src: &mut SourceStats, c: &DecodeCounters) {
    stats.decodes += c.decodes;
    stats.prime_decodes += c.prime_decodes;
    stats.plc_frames += c.plc;
    stats.fec_frames += c.fec;
    stats.corrupt_payload += c.corrupt;
    stats.silence_frames += c.silence;
    stats.dtx_frames += c.dtx;
    stats.decoder_errors += c.decoder_errors;
    src.decodes += c.decodes;
    src.plc_frames += c.plc;
    src.fec_frames += c.fec;
    src.dtx_frames += c.dtx;
    src.corrupt_payload += c.corrupt;
}

impl Mixer {
    /// Creates a room mixer whose first tick is due at `now`.
    pub fn new(mut cfg: MixerConfig, now: Instant) -> Result<Self, MixerError> {
        cfg.max_speakers = cfg.max_speakers.clamp(1, 16);
        let settings = EncoderSettings::from_config(&cfg);
        let err = |e: opus::Error| MixerError(e.to_string());
        let full = StreamEncoder::new(settings).map_err(err)?;
        let slots = (0..cfg.max_speakers)
            .map(|_| {
                StreamEncoder::new(settings).map(|encoder| SlotOut {
                    encoder,
                    contrib: SILENCE,
                    encoded_for: None,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let selector = Selector::new(SelectorConfig {
            slots: cfg.max_speakers,
            switch_margin_db: cfg.switch_margin_db,
            switch_hold_ticks: config::ticks(cfg.switch_hold, 1),
            min_speaker_ticks: config::ticks(cfg.min_speaker_time, 0),
            dominant_margin_db: cfg.dominant_margin_db,
            dominant_hold_ticks: config::ticks(cfg.dominant_hold, 1),
        });
        let det_cfg = DetectorConfig {
            speech_threshold_dbov: cfg.speech_threshold_dbov.min(127),
            use_voice_flag: cfg.use_voice_flag,
            start_frames: cfg.talk_start_frames,
            hangover_ticks: config::ticks(cfg.talk_hangover, 1),
        };
        let jitter_min = config::samples(cfg.jitter_min_delay);
        let jitter_max = config::samples(cfg.jitter_max_delay).max(jitter_min);
        Ok(Mixer {
            det_cfg,
            epoch: now,
            next_index: 0,
            sources: Vec::new(),
            source_index: HashMap::new(),
            listeners: Vec::new(),
            listener_index: HashMap::new(),
            selector,
            full,
            slots,
            full_history: VecDeque::with_capacity(WARMUP_FRAMES + 1),
            stats: MixerStats::default(),
            pending_events: Vec::new(),
            jitter_min,
            jitter_max,
            phase: PhaseLock::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &MixerConfig {
        &self.cfg
    }

    /// Adds a source. Returns false if it already existed.
    pub fn add_source(&mut self, id: SourceId) -> bool {
        if self.source_index.contains_key(&id) {
            return false;
        }
        self.source_index.insert(id, self.sources.len());
        self.sources.push(Source {
            id,
            jb: JitterBuffer::new(self.jitter_min, self.jitter_max),
            det: ActivityDetector::default(),
            dec: SourceDecoder::default(),
            fade_in: false,
            stats: SourceStats::default(),
        });
        true
    }

    /// Removes a source (its audio stops at once). Returns false if unknown.
    pub fn remove_source(&mut self, id: SourceId) -> bool {
        let Some(idx) = self.source_index.remove(&id) else {
            return false;
        };
        let src = self.sources.swap_remove(idx);
        if let Some(moved) = self.sources.get(idx) {
            self.source_index.insert(moved.id, idx);
        }
        self.selector.remove(id);
        if src.det.speaking() {
            self.pending_events
                .push(MixerEvent::TalkingStopped { source: id });
        }
        if self.selector.clear_dominant(id) {
            self.pending_events
                .push(MixerEvent::DominantSpeakerChanged {
                    previous: Some(id),
                    current: None,
                });
        }
        true
    }

    /// Adds a listener. `own_source` is excluded from what it hears while that
    /// source is a selected speaker. Returns false if it already existed.
    pub fn add_listener(&mut self, id: ListenerId, own_source: Option<SourceId>) -> bool {
        if self.listener_index.contains_key(&id) {
            return false;
        }
        self.listener_index.insert(id, self.listeners.len());
        self.listeners.push(Listener {
            id,
            own: own_source,
            seq: 0,
            joined: self.next_index,
            last: None,
        });
        true
    }

    /// Removes a listener. Returns false if unknown.
    pub fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(idx) = self.listener_index.remove(&id) else {
            return false;
        };
        self.listeners.swap_remove(idx);
        if let Some(moved) = self.listeners.get(idx) {
            self.listener_index.insert(moved.id, idx);
        }
        true
    }

    /// Changes which source a listener must not hear (keeps its RTP stream).
    pub fn set_listener_source(&mut self, id: ListenerId, own_source: Option<SourceId>) -> bool {
        match self.listener_index.get(&id) {
            Some(&idx) => {
                self.listeners[idx].own = own_source;
                true
            }
            None => false,
        }
    }

    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// Room-wide counters.
    pub fn stats(&self) -> &MixerStats {
        &self.stats
    }

    /// One source's counters and state.
    pub fn source_stats(&self, id: SourceId) -> Option<SourceStats> {
        let src = &self.sources[*self.source_index.get(&id)?];
        let mut s = src.stats.clone();
        s.lost_estimate = src.jb.lost_estimate();
        s.buffered = src.jb.len();
        s.target_delay_ms = src.jb.target_delay() as f32 / 48.0;
        s.talking = src.det.speaking();
        s.selected = self.selector.slot_of(id).is_some();
        s.loudness_db = src.det.loudness();
        Some(s)
    }

    /// Sources currently mixed, by slot.
    pub fn speakers(&self) -> Vec<SourceId> {
        self.selector
            .slots()
            .iter()
            .filter_map(|s| s.source())
            .collect()
    }

    pub fn dominant_speaker(&self) -> Option<SourceId> {
        self.selector.dominant()
    }

    /// When the next frame is due; call [`Mixer::tick`] then.
    pub fn next_tick_at(&self) -> Instant {
        self.tick_time(self.next_index)
    }

    /// When frame `index` is due: the nominal 20 ms grid from the epoch,
    /// moved by the phase lock (see phase.rs).
    fn tick_time(&self, index: u64) -> Instant {
        let nanos = FRAME_DURATION.as_nanos().saturating_mul(u128::from(index));
        let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let nominal = self.epoch.checked_add(d).unwrap_or(self.epoch);
        let shift = self.phase.offset_ns();
        let by = Duration::from_nanos(shift.unsigned_abs());
        if shift >= 0 {
            nominal.checked_add(by).unwrap_or(nominal)
        } else {
            nominal.checked_sub(by).unwrap_or(nominal)
        }
    }

    /// `t` in 48 kHz samples since the epoch (negative before it).
    fn samples_at(&self, t: Instant) -> i64 {
        match t.checked_duration_since(self.epoch) {
            Some(d) => config::samples(d),
            None => config::samples(self.epoch.duration_since(t)).saturating_neg(),
        }
    }

    /// Feeds one received packet of `source` that arrived at `now`.
    pub fn push_packet(
        &mut self,
        source: SourceId,
        packet: AudioPacket,
        now: Instant,
    ) -> PushOutcome {
        self.stats.packets_received += 1;
        self.stats.bytes_received += packet.payload.len() as u64;
        let arrival = self.samples_at(now);
        let Some(&idx) = self.source_index.get(&source) else {
            self.stats.unknown_source += 1;
            return PushOutcome::Dropped(DropReason::UnknownSource);
        };
        let stats = &mut self.stats;
        let src = &mut self.sources[idx];
        src.stats.packets_received += 1;
        let drop = |stats: &mut MixerStats, src: &mut Source, r: DropReason| {
            src.stats.packets_dropped += 1;
            match r {
                DropReason::UnknownSource => stats.unknown_source += 1,
                DropReason::EmptyPayload => stats.empty_payload += 1,
                DropReason::PayloadTooLarge => stats.payload_too_large += 1,
                DropReason::CorruptPayload => {
                    stats.corrupt_payload += 1;
                    src.stats.corrupt_payload += 1;
                }
                DropReason::BadDuration => stats.bad_duration += 1,
                DropReason::Late => {
                    stats.late += 1;
                    src.stats.late += 1;
                }
                DropReason::Duplicate => stats.duplicate += 1,
                DropReason::Overflow => stats.overflow += 1,
                DropReason::TimestampOutlier => stats.timestamp_outliers += 1,
            }
            PushOutcome::Dropped(r)
        };

        let dur = match opus_duration(&packet.payload) {
            Ok(d) => d as i64,
            Err(r) => return drop(stats, src, r),
        };
        let level = match packet.level {
            Some(l) if l.is_valid() => Some(l),
            Some(_) => {
                stats.bad_level += 1;
                None
            }
            None => None,
        };
        // Without a usable level, guess from the payload: DTX frames are
        // silence, anything else is assumed to be speech at a fixed level.
        let level = level.or_else(|| {
            if packet.payload.len() <= DTX_MAX_BYTES {
                Some(AudioLevel {
                    dbov: 127,
                    voice: false,
                })
            } else {
                self.cfg.level_without_extension.map(|d| AudioLevel {
                    dbov: d.min(127),
                    voice: true,
                })
            }
        });
        let outcome = src.jb.insert(
            packet.seq,
            packet.timestamp,
            dur,
            level,
            packet.payload,
            arrival,
        );
        match outcome {
            Insert::Buffered | Insert::BufferedAfterJump | Insert::Late => {
                if let Some(l) = level {
                    src.det.on_packet(l, dur, &self.det_cfg);
                }
            }
            _ => {}
        }
        match outcome {
            Insert::Buffered => {
                stats.packets_buffered += 1;
                src.stats.packets_buffered += 1;
                PushOutcome::Buffered
            }
            Insert::BufferedAfterJump => {
                stats.packets_buffered += 1;
                stats.timestamp_jumps += 1;
                src.stats.packets_buffered += 1;
                src.stats.timestamp_jumps += 1;
                PushOutcome::BufferedAfterJump
            }
            Insert::Late => drop(stats, src, DropReason::Late),
            Insert::Duplicate => drop(stats, src, DropReason::Duplicate),
            Insert::Overflow => drop(stats, src, DropReason::Overflow),
            Insert::Outlier => drop(stats, src, DropReason::TimestampOutlier),
        }
    }

    /// Produces the next 20 ms frame if it is due at `now`.
    ///
    /// Call in a loop (`while let Some(t) = mixer.tick(now)`) whenever
    /// [`Mixer::next_tick_at`] has passed. If the caller is more than
    /// `max_catch_up` late, the missed frames are skipped, not bunched.
    pub fn tick(&mut self, now: Instant) -> Option<Tick> {
        let due = self.tick_time(self.next_index);
        let behind = now.checked_duration_since(due)?;
        if behind > self.cfg.max_catch_up {
            let missed = behind.as_nanos() / FRAME_DURATION.as_nanos();
            let missed = u64::try_from(missed).unwrap_or(u64::MAX / 2);
            self.next_index = self.next_index.saturating_add(missed);
            self.stats.ticks_skipped += missed;
        }
        let index = self.next_index;
        self.next_index += 1;
        Some(self.run_tick(index, now))
    }

    /// `called`: when the shell asked for this frame, i.e. when it goes out.
    fn run_tick(&mut self, index: u64, called: Instant) -> Tick {
        let at = self.tick_time(index);
        let now = self.samples_at(at);
        let played = self.samples_at(called.max(at));
        let mut events = std::mem::take(&mut self.pending_events);
        self.stats.ticks += 1;

        // 1. Talk detection and speaker selection.
        let mut talking = Vec::new();
        for src in &mut self.sources {
            match src.det.on_tick(&self.det_cfg) {
                Some(TalkEdge::Started) => {
                    events.push(MixerEvent::TalkingStarted { source: src.id })
                }
                Some(TalkEdge::Stopped) => {
                    events.push(MixerEvent::TalkingStopped { source: src.id })
                }
                None => {}
            }
            if src.det.speaking() {
                talking.push(Candidate {
                    id: src.id,
                    speaking: true,
                    loudness: src.det.loudness(),
                });
            }
        }
        let sources = &self.sources;
        let index_map = &self.source_index;
        let lookup = |id: SourceId| {
            index_map.get(&id).map(|&i| {
                let s = &sources[i];
                Candidate {
                    id,
                    speaking: s.det.speaking(),
                    loudness: s.det.loudness(),
                }
            })
        };
        let changes = self.selector.update(index, &talking, lookup);
        let previous = self.selector.dominant();
        if let Some(current) = self.selector.update_dominant(&talking, lookup) {
            events.push(MixerEvent::DominantSpeakerChanged { previous, current });
        }

        // 2. Newly selected sources get a fresh, primed decoder.
        for &(_, id) in &changes.entered {
            if let Some(&i) = self.source_index.get(&id) {
                let src = &mut self.sources[i];
                let mut c = DecodeCounters::default();
                src.dec.start(&mut src.jb, &mut c);
                src.fade_in = true;
                add_counters(&mut self.stats, &mut src.stats, &c);
            }
        }

        // 3. Advance every jitter buffer; decode only the selected.
        let slot_states: Vec<SlotState> = self.selector.slots().to_vec();
        for slot in &mut self.slots {
            slot.contrib = SILENCE;
        }
        let threshold = self.det_cfg.speech_threshold_dbov;
        // The tick clock follows the dominant speaker's packets (phase.rs).
        let reference = self
            .selector
            .dominant()
            .filter(|d| self.cfg.lock_tick_phase && slot_states.iter().any(|s| s.source() == Some(*d)));
        let mut phase_error = None;
        let mut phase_room = phase::Room::default();
        // Where the reference plays, while the lock holds it near its aim.
        let locked_at = reference
            .and_then(|r| self.source_index.get(&r))
            .and_then(|&i| self.sources[i].jb.playout_error(now))
            .filter(|&e| phase::holds(e));
        for src in &mut self.sources {
            let slot = slot_states.iter().position(|s| s.source() == Some(src.id));
            let level = src.jb.level_at_play();
            // A speaker the lock keeps in phase (the reference, and speakers
            // whose packets fall with its) is held or skipped a frame only
            // when two frames off, not at a quiet moment and not for one
            // late packet: the lock follows its small changes 1 ms at a
            // time (a late packet raises the jitter target, and the lock
            // then moves the ticks later), and a whole frame of nudge would
            // only fight it. A missing packet is concealed (FEC or PLC, one
            // frame either way) and playout stays where it is.
            let in_lock = slot.is_some()
                && locked_at.is_some_and(|r| src.jb.playout_error(now).is_some_and(|e| phase::in_phase(e, r)));
            let quiet = !in_lock && is_quiet(level, threshold);
            let pending_empty = src.jb.pending() == 0;
            let adj = src.jb.begin_tick(now, slot.is_some(), quiet, pending_empty);
            if reference == Some(src.id) {
                if matches!(adj, Adjust::Normal | Adjust::Anchored) {
                    phase_error = src.jb.playout_error(now);
                }
            } else if slot.is_some()
                && let Some(e) = src.jb.playout_error(now)
            {
                phase_room.add(e);
            }
            match adj {
                Adjust::Skip => {
                    self.stats.frames_skipped += 1;
                    src.stats.frames_skipped += 1;
                }
                Adjust::Hold => {
                    self.stats.frames_held += 1;
                    src.stats.frames_held += 1;
                }
                Adjust::Reanchored => self.stats.reanchors += 1,
                Adjust::Idle | Adjust::Normal | Adjust::Anchored => {}
            }
            if let Some(i) = slot {
                let out = &mut self.slots[i].contrib;
                let mut c = DecodeCounters::default();
                if adj == Adjust::Hold {
                    src.dec.conceal_frame(out, &mut c);
                    if c.plc > 0 {
                        c.frame_arrival = src.jb.play().and_then(|p| src.jb.expected_arrival(p));
                    }
                } else {
                    src.dec
                        .render(&mut src.jb, out, self.cfg.decoder_fec, &mut c);
                }
                if std::mem::take(&mut src.fade_in) {
                    mix::fade(out, true, FADE_IN);
                }
                if matches!(slot_states[i], SlotState::Fading { .. }) {
                    mix::fade(out, false, FRAME_SAMPLES);
                    src.dec.stop(&mut src.jb);
                }
                add_counters(&mut self.stats, &mut src.stats, &c);
                if let Some(arrival) = c.frame_arrival {
                    let wait = played.saturating_sub(arrival);
                    self.stats.latency.record_samples(wait);
                }
            }
            src.jb.end_tick(adj == Adjust::Hold);
        }
        if let Some(error) = phase_error
            && self.phase.update(error, phase_room) != 0
        {
            self.stats.phase_corrections += 1;
        }

        // 4. Full mix.
        let mut full_raw = SILENCE;
        mix::sum_into(
            &mut full_raw,
            slot_states
                .iter()
                .zip(&self.slots)
                .filter(|(s, _)| s.source().is_some())
                .map(|(_, o)| &o.contrib),
        );

        // 5. Route every listener: its own mix-minus while its source is a
        // speaker, otherwise the shared full mix.
        let mut keys = Vec::with_capacity(self.listeners.len());
        let mut slot_wanted = vec![false; self.slots.len()];
        let mut slot_newcomer = vec![false; self.slots.len()];
        let mut full_newcomer = false;
        for l in &self.listeners {
            let key = l
                .own
                .and_then(|own| slot_states.iter().position(|s| s.source() == Some(own)))
                .map_or(StreamKey::Full, StreamKey::Slot);
            let switched = l.last.is_some_and(|last| last != key);
            match key {
                StreamKey::Full => full_newcomer |= switched,
                StreamKey::Slot(i) => {
                    slot_wanted[i] = true;
                    slot_newcomer[i] |= switched || l.last.is_none();
                }
            }
            keys.push((key, switched));
        }

        // 6. Encode: the full mix once, then each wanted mix-minus.
        let independent = self.cfg.independent_frame_on_switch;
        let mut streams = Vec::with_capacity(self.slots.len() + 1);
        let mut full_out = full_raw;
        let (limited, full_payload) = self
            .full
            .encode(&mut full_out, independent && full_newcomer);
        self.stats.limited_frames += u64::from(limited);
        let full_stream = match &full_payload {
            Some(p) => {
                self.stats.encodes += 1;
                streams.push(TickStream {
                    kind: StreamKind::FullMix,
                    payload: p.clone(),
                });
                Some(0)
            }
            None => {
                self.stats.encode_errors += 1;
                None
            }
        };
        let mut slot_stream = vec![None; self.slots.len()];
        let history = self.full_history.make_contiguous();
        for (i, out) in self.slots.iter_mut().enumerate() {
            let source = slot_states[i].source();
            let Some(source) = source.filter(|_| slot_wanted[i]) else {
                out.encoded_for = None;
                continue;
            };
            let mut first = slot_newcomer[i];
            if out.encoded_for != Some(source) {
                let follow = full_payload.as_ref().and_then(|p| p.first().copied());
                self.stats.warmup_encodes += out.encoder.warm_up(history, &self.full.limiter, follow);
                first = true;
            }
            let mut mm = SILENCE;
            mix::mix_minus(&mut mm, &full_raw, &out.contrib);
            let (limited, payload) = out.encoder.encode(&mut mm, independent && first);
            self.stats.limited_frames += u64::from(limited);
            out.encoded_for = Some(source);
            match payload {
                Some(p) => {
                    self.stats.encodes += 1;
                    slot_stream[i] = Some(streams.len());
                    streams.push(TickStream {
                        kind: StreamKind::MixMinus { slot: i, source },
                        payload: p,
                    });
                }
                None => self.stats.encode_errors += 1,
            }
        }
        if self.full_history.len() >= WARMUP_FRAMES {
            self.full_history.pop_front();
        }
        self.full_history.push_back(full_out);

        // 7. Per-listener RTP continuity.
        let mut routes = Vec::with_capacity(self.listeners.len());
        for (l, (key, switched)) in self.listeners.iter_mut().zip(keys) {
            let stream = match key {
                StreamKey::Full => full_stream,
                StreamKey::Slot(i) => slot_stream[i],
            };
            let timestamp = (index
                .wrapping_sub(l.joined)
                .wrapping_mul(FRAME_SAMPLES as u64)) as u32;
            if let Some(stream) = stream {
                routes.push(Route {
                    listener: l.id,
                    stream,
                    seq: l.seq,
                    timestamp,
                    switched,
                });
            }
            // A failed encode still uses up a sequence number: the receiver
            // sees a loss and conceals, rather than a silent time warp.
            l.seq = l.seq.wrapping_add(1);
            l.last = Some(key);
            self.stats.stream_switches += u64::from(switched);
        }

        let program = ProgramFrame {
            rtp_timestamp: (index.wrapping_mul(FRAME_SAMPLES as u64)) as u32,
            payload: full_payload,
            pcm: self
                .cfg
                .program_pcm
                .then(|| full_out.iter().map(|&x| to_i16(x)).collect()),
        };
        Tick {
            index,
            at,
            streams,
            routes,
            program,
            speakers: slot_states.iter().filter_map(|s| s.source()).collect(),
            events,
        }
    }
}

// The room core moves a room's mixer into its task and hands ticks to
// per-receiver senders: keep both sendable.
const _: () = {
    const fn assert_send<T: Send>() {}
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Mixer>();
    assert_send_sync::<Tick>();
};
