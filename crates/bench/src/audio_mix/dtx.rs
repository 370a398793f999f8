//! Whether a server's SDP answer asks for Opus DTX, as a browser decides:
//! the answer's `a=fmtp` line of its Opus payload type has `usedtx=1`
//! (RFC 7587: the receiver's preference; Chrome then turns DTX on in its
//! encoder, see `Sound::dtx_silence` for what it sends while silent).

/// True when the answer's Opus payload type says `usedtx=1`.
pub fn answer_asks_for_dtx(sdp: &str) -> bool {
    let opus: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|rest| {
            let (pt, codec) = rest.split_once(' ')?;
            codec.to_ascii_lowercase().starts_with("opus/").then_some(pt)
        })
        .collect();
    sdp.lines().filter_map(|l| l.trim().strip_prefix("a=fmtp:")).any(|rest| {
        let Some((pt, params)) = rest.split_once(' ') else { return false };
        opus.contains(&pt)
            && params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "usedtx=1"
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_opus_fmtp_counts() {
        let with = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n";
        assert!(answer_asks_for_dtx(with));
        let without = "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n";
        assert!(!answer_asks_for_dtx(without));
        let off = "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 usedtx=0\r\n";
        assert!(!answer_asks_for_dtx(off));
        let other = "a=rtpmap:111 opus/48000/2\r\na=rtpmap:96 foo/90000\r\na=fmtp:96 usedtx=1\r\n";
        assert!(!answer_asks_for_dtx(other));
    }
}
