//! Opus decoding of one selected source, with loss concealment.
//!
//! A source only has its decoder fed while it occupies a speaker slot. While
//! it is not selected its packets pass through the jitter buffer undecoded,
//! so its decoder state goes stale; on selection the decoder is therefore
//! reset and primed with the (up to two) packets played just before, whose
//! output is thrown away. The first frame heard then continues the sender's
//! signal instead of starting from a cold predictor, and a short fade-in
//! covers the remaining discontinuity.
//!
//! Missing audio is rebuilt with in-band FEC from the following packet when
//! that packet is queued and exactly follows the gap, otherwise with Opus
//! PLC; after 100 ms of concealment, silence is cheaper and sounds the same.
//! After a DTX packet (1-2 bytes: the sender says it stops sending because
//! it is silent) a gap is that silence, not loss: it is played as silence
//! and counted as DTX, never concealed.

use crate::FRAME_SAMPLES;
use crate::jitter::{FRAME, JitterBuffer};
use crate::mix::Pcm;

/// Longest Opus packet, samples.
const MAX_PACKET: usize = 5760;
/// Opus frame sizes are multiples of 2.5 ms.
const GRAIN: i64 = 120;
/// Concealment beyond this many samples in a row is plain silence.
const MAX_CONCEAL: i64 = 5 * FRAME;
/// Payloads this short are Opus DTX frames (a TOC byte, no audio data).
pub(crate) const DTX_MAX_BYTES: usize = 2;

/// Decode work of one tick, added into the stats by the mixer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DecodeCounters {
    pub decodes: u64,
    pub prime_decodes: u64,
    pub plc: u64,
    pub fec: u64,
    pub corrupt: u64,
    pub silence: u64,
    /// Gaps after a DTX packet, played as silence.
    pub dtx: u64,
    pub decoder_errors: u64,
    /// Arrival (samples since the epoch; expected arrival when concealed) of
    /// the audio that starts the frame just rendered, if it was not silence.
    pub frame_arrival: Option<i64>,
}

#[derive(Default)]
pub(crate) struct SourceDecoder {
    decoder: Option<opus::Decoder>,
    /// Decoded samples from the playout position on.
    pending: Vec<f32>,
    scratch: Vec<f32>,
    /// Samples concealed since the last real packet.
    conceal_run: i64,
    /// Arrival of the audio at the end of `pending` (what is left over after
    /// a frame is always the tail of the last chunk decoded or concealed).
    tail_arrival: Option<i64>,
    /// The last packet played was a DTX frame: the sender is silent and
    /// sends (almost) nothing until it talks again.
    in_dtx: bool,
}

impl std::fmt::Debug for SourceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDecoder")
            .field("has_decoder", &self.decoder.is_some())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn round_up_grain(n: i64) -> i64 {
    ((n.max(1) + GRAIN - 1) / GRAIN) * GRAIN
}

impl SourceDecoder {
    /// Called when the source enters a slot: fresh decoder state, primed
    /// with the packets that were just played without decoding.
    pub fn start(&mut self, jb: &mut JitterBuffer, c: &mut DecodeCounters) {
        if let Some(d) = &mut self.decoder
            && d.reset_state().is_err()
        {
            self.decoder = None;
        }
        if self.decoder.is_none() {
            match opus::Decoder::new(crate::SAMPLE_RATE, opus::Channels::Mono) {
                Ok(d) => self.decoder = Some(d),
                Err(_) => c.decoder_errors += 1,
            }
        }
        self.ensure_scratch();
        self.pending.clear();
        jb.discard_pending();
        self.conceal_run = 0;
        self.in_dtx = false;
        let Some(play) = jb.play() else { return };
        let Some(dec) = &mut self.decoder else { return };
        for q in jb.take_history(play) {
            self.in_dtx = q.payload.len() <= DTX_MAX_BYTES;
            // Output discarded: this only rebuilds predictor and overlap state.
            if dec
                .decode_float(&q.payload, &mut self.scratch, false)
                .is_ok()
            {
                c.prime_decodes += 1;
            }
        }
    }

    /// Called when the source leaves its slot.
    pub fn stop(&mut self, jb: &mut JitterBuffer) {
        self.pending.clear();
        jb.discard_pending();
    }

    fn ensure_scratch(&mut self) {
        if self.scratch.len() < MAX_PACKET {
            self.scratch = vec![0.0; MAX_PACKET];
        }
    }

    /// Makes `pending` agree with the jitter buffer after it moved playout.
    fn sync(&mut self, jb: &mut JitterBuffer) {
        self.ensure_scratch();
        let want = jb.pending();
        if self.pending.len() > want {
            let extra = self.pending.len() - want;
            self.pending.drain(..extra);
        } else if self.pending.len() < want {
            jb.discard_pending();
            if let Some(p) = jb.play() {
                jb.set_read(p.saturating_add(self.pending.len() as i64));
            }
        }
    }

    /// Produces this tick's 960 samples from the jitter buffer.
    pub fn render(
        &mut self,
        jb: &mut JitterBuffer,
        out: &mut Pcm,
        fec: bool,
        c: &mut DecodeCounters,
    ) {
        self.sync(jb);
        if jb.play().is_none() {
            out.fill(0.0);
            return;
        }
        // Where the frame's first sample came from: decoded ahead last tick,
        // or the first chunk added below.
        let mut first = (!self.pending.is_empty()).then_some(self.tail_arrival);
        let mut guard = 0;
        while self.pending.len() < FRAME_SAMPLES && guard < 64 {
            guard += 1;
            let pos = jb.read();
            let need = (FRAME_SAMPLES - self.pending.len()) as i64;
            if let Some(pkt) = jb.take_at(pos) {
                let skip = usize::try_from(pos.saturating_sub(pkt.ts)).unwrap_or(0);
                let decoded = match &mut self.decoder {
                    Some(d) => d.decode_float(&pkt.payload, &mut self.scratch, false).ok(),
                    None => None,
                };
                match decoded {
                    Some(n) if n > 0 => {
                        c.decodes += 1;
                        let n = n.min(self.scratch.len());
                        if skip < n {
                            self.pending.extend_from_slice(&self.scratch[skip..n]);
                            first.get_or_insert(Some(pkt.arrival));
                            self.tail_arrival = Some(pkt.arrival);
                        }
                        jb.set_read(pkt.ts.saturating_add(n as i64).max(pos.saturating_add(1)));
                        self.conceal_run = 0;
                        self.in_dtx = pkt.payload.len() <= DTX_MAX_BYTES;
                    }
                    _ => {
                        // Parsed at push time but the decoder refused it.
                        c.corrupt += 1;
                        let len =
                            round_up_grain(pkt.ts.saturating_add(pkt.dur).saturating_sub(pos));
                        let origin = self.conceal(pos, len.min(MAX_PACKET as i64), None, jb, c);
                        first.get_or_insert(origin);
                    }
                }
            } else if self.in_dtx {
                // The sender's silence: up to its next packet, at most a frame.
                let len = jb
                    .next_after(pos)
                    .map(|(ts, _)| ts.saturating_sub(pos))
                    .filter(|&gap| gap < need)
                    .unwrap_or(need)
                    .clamp(1, FRAME);
                self.pending.resize(self.pending.len() + len as usize, 0.0);
                self.tail_arrival = None;
                jb.set_read(pos.saturating_add(len));
                c.dtx += 1;
                first.get_or_insert(None);
            } else {
                let next = jb.next_after(pos).map(|(ts, _)| ts.saturating_sub(pos));
                let len = match next {
                    Some(gap) if gap < need => round_up_grain(gap),
                    _ => round_up_grain(need),
                }
                .min(FRAME);
                let use_fec = fec && next == Some(len);
                let origin = self.conceal(pos, len, use_fec.then_some(()), jb, c);
                first.get_or_insert(origin);
            }
        }
        c.frame_arrival = first.flatten();
        if self.pending.len() < FRAME_SAMPLES {
            self.pending.resize(FRAME_SAMPLES, 0.0);
        }
        out.copy_from_slice(&self.pending[..FRAME_SAMPLES]);
        self.pending.drain(..FRAME_SAMPLES);
    }

    /// Fills `len` samples at `pos` by FEC (from the packet at `pos + len`),
    /// PLC, or silence. Returns the expected arrival of the concealed audio
    /// (`None` for silence).
    fn conceal(
        &mut self,
        pos: i64,
        len: i64,
        fec: Option<()>,
        jb: &mut JitterBuffer,
        c: &mut DecodeCounters,
    ) -> Option<i64> {
        let n = usize::try_from(len)
            .unwrap_or(0)
            .clamp(GRAIN as usize, MAX_PACKET);
        let mut done = false;
        if let Some(dec) = &mut self.decoder {
            if fec.is_some()
                && let Some((_, next)) = jb.next_after(pos)
                && let Ok(k) = dec.decode_float(next, &mut self.scratch[..n], true)
                && k == n
            {
                c.fec += 1;
                done = true;
            }
            if !done
                && self.conceal_run < MAX_CONCEAL
                && let Ok(k) = dec.decode_float(&[], &mut self.scratch[..n], false)
                && k == n
            {
                c.plc += 1;
                done = true;
            }
        }
        let origin = if done {
            self.pending.extend_from_slice(&self.scratch[..n]);
            jb.expected_arrival(pos)
        } else {
            c.silence += 1;
            self.pending.resize(self.pending.len() + n, 0.0);
            None
        };
        self.tail_arrival = origin;
        self.conceal_run = self.conceal_run.saturating_add(n as i64);
        jb.set_read(pos.saturating_add(n as i64));
        origin
    }

    /// A hold: one frame of concealment that consumes nothing.
    pub fn conceal_frame(&mut self, out: &mut Pcm, c: &mut DecodeCounters) {
        self.ensure_scratch();
        if self.in_dtx {
            out.fill(0.0);
            c.dtx += 1;
            return;
        }
        let mut done = false;
        if self.conceal_run < MAX_CONCEAL
            && let Some(dec) = &mut self.decoder
            && let Ok(k) = dec.decode_float(&[], &mut self.scratch[..FRAME_SAMPLES], false)
            && k == FRAME_SAMPLES
        {
            out.copy_from_slice(&self.scratch[..FRAME_SAMPLES]);
            c.plc += 1;
            done = true;
        }
        if !done {
            out.fill(0.0);
            c.silence += 1;
        }
        self.conceal_run = self.conceal_run.saturating_add(FRAME);
    }
}
