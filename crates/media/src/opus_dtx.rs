//! The Opus payload type a Participant's peer answers with.
//!
//! Like str0m's default (payload type 111, `minptime=10;useinbandfec=1`),
//! plus `usedtx=1`: in an answer that is this side's wish as a receiver,
//! and browsers honour it (Chrome reads the remote description's fmtp).
//! A microphone that is silent then sends a comfort-noise refresh and one
//! DTX frame about every 400 ms instead of a packet every 20 ms, so the
//! listeners of a room cost the server almost nothing in. The mixer plays
//! the gaps after a DTX frame as silence (docs/mixing.md).

use str0m::RtcConfig;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Pt};

/// Adds Opus with DTX requested (see the module docs).
pub(crate) trait OpusDtx {
    fn enable_opus_dtx(self) -> Self;
}

impl OpusDtx for RtcConfig {
    fn enable_opus_dtx(mut self) -> Self {
        self.codec_config().add_config(
            Pt::new_with_value(111),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            FormatParams {
                min_p_time: Some(10),
                use_inband_fec: Some(true),
                use_dtx: Some(true),
                ..FormatParams::default()
            },
        );
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::change::SdpOffer;
    use str0m::media::{Direction, MediaKind};
    use str0m::Rtc;

    /// An offer as a browser makes it (Opus without usedtx) gets an answer
    /// asking for DTX, on the browser's payload type.
    #[test]
    fn the_answer_asks_for_opus_dtx() {
        let now = std::time::Instant::now();
        let mut browser = Rtc::builder().clear_codecs().enable_opus(true, false).build(now);
        let mut change = browser.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let Some((offer, _)) = change.apply() else { panic!("no offer") };
        let offer = offer.to_sdp_string().replace("a=rtpmap:111 ", "a=rtpmap:109 ").replace("a=fmtp:111 ", "a=fmtp:109 ");
        let offer = offer.replace(" 111\r\n", " 109\r\n").replace("a=rtcp-fb:111 ", "a=rtcp-fb:109 ");
        assert!(!offer.contains("usedtx"), "{offer}");
        let mut server = RtcConfig::new().set_ice_lite(true).clear_codecs().enable_opus_dtx().build(now);
        let offer = SdpOffer::from_sdp_string(&offer).expect("offer parses");
        let answer = server.sdp_api().accept_offer(offer).expect("answer").to_sdp_string();
        let fmtp = answer.lines().find(|l| l.starts_with("a=fmtp:109 ")).unwrap_or_else(|| panic!("{answer}"));
        assert!(fmtp.contains("usedtx=1"), "{fmtp}");
        assert!(fmtp.contains("useinbandfec=1"), "{fmtp}");
    }
}
