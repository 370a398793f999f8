//! Blocking playlist reload (RFC 8216bis §6.2.5.2), as a pure decision.
//!
//! The HTTP shell parses the query with [`Directives::from_query`], asks the
//! packager ([`crate::LivePackager::reload`]) and then either answers at once
//! (`Ready`), answers 400 (`BadRequest`), or holds the request (`Wait`) and
//! asks again every time the packager reports a new part, segment or the end
//! of the broadcast. After [`crate::LivePackager::blocking_timeout`] without a
//! `Ready` it answers 503 (§6.2.5.2: "SHOULD return Service Unavailable").

use std::fmt;

use crate::names::parse_number;

/// The delivery directives of one playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`
    pub msn: Option<u64>,
    /// `_HLS_part`
    pub part: Option<u64>,
}

/// The request must be refused with 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRequest(pub &'static str);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad playlist request: {}", self.0)
    }
}

impl std::error::Error for BadRequest {}

impl Directives {
    /// Parses a raw query string (`_HLS_msn=12&_HLS_part=3`). Values must be
    /// decimal-integers; a repeated directive is refused. Other `_HLS_`
    /// directives (`_HLS_skip`) are ignored, as §6.2.5.1 requires of a
    /// server that does not advertise CAN-SKIP-UNTIL; other parameters (cache
    /// busters) are ignored too.
    pub fn from_query(query: &str) -> Result<Self, BadRequest> {
        let mut d = Directives::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "_HLS_msn" => &mut d.msn,
                "_HLS_part" => &mut d.part,
                _ => continue,
            };
            if slot.is_some() {
                return Err(BadRequest("repeated delivery directive"));
            }
            *slot = Some(parse_number(value).ok_or(BadRequest("not a decimal-integer"))?);
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err(BadRequest("_HLS_part without _HLS_msn"));
        }
        Ok(d)
    }
}

/// What to do with a playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Serve the current playlist now.
    Ready,
    /// Hold the request until the playlist contains segment `msn` (when
    /// `part` is `None`) or part `part` of segment `msn` (or anything later).
    /// Re-evaluate after every playlist update; the target may roll forward.
    Wait { msn: u64, part: Option<u64> },
}

/// What the decision needs to know about the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadState {
    /// The playlist has `EXT-X-ENDLIST`.
    pub ended: bool,
    /// At least one part has been published (a playlist exists).
    pub started: bool,
    /// Media sequence number of the segment being built (the one after the
    /// last complete segment).
    pub open_msn: u64,
    /// Parts of `open_msn` already published.
    pub open_parts: u64,
    /// PART-TARGET in milliseconds.
    pub part_target_ms: u64,
}

impl ReloadState {
    /// RFC 8216bis §6.2.5.2: "three divided by the Part Target Duration if
    /// the Part Target Duration is less than one second, or three otherwise".
    pub fn advance_part_limit(&self) -> u64 {
        if self.part_target_ms < 1000 {
            3000 / self.part_target_ms.max(1)
        } else {
            3
        }
    }

    /// Decides a request. `parts_of(msn)` gives the number of parts of a
    /// complete segment that is still known (`None` once it is forgotten).
    pub fn decide(
        &self,
        directives: Directives,
        parts_of: impl Fn(u64) -> Option<u64>,
    ) -> Result<Reload, BadRequest> {
        if directives.part.is_some() && directives.msn.is_none() {
            return Err(BadRequest("_HLS_part without _HLS_msn"));
        }
        // §6.2.5.2: the server MUST ignore the directives once the playlist
        // has EXT-X-ENDLIST.
        if self.ended {
            return Ok(Reload::Ready);
        }
        let Some(mut msn) = directives.msn else {
            return Ok(if self.started {
                Reload::Ready
            } else {
                Reload::Wait {
                    msn: self.open_msn,
                    part: Some(0),
                }
            });
        };
        let mut part = directives.part;

        // "greater than the Media Sequence Number of the last Media Segment
        // in the current Playlist plus two": the last complete one is
        // open_msn - 1.
        if msn > self.open_msn.saturating_add(1) {
            return Err(BadRequest("_HLS_msn more than two segments ahead"));
        }
        let limit = self.advance_part_limit();
        loop {
            if msn < self.open_msn {
                // A complete segment (or one already gone from the window).
                let Some(p) = part else {
                    return Ok(Reload::Ready);
                };
                match parts_of(msn) {
                    // §6.2.5.2: a Part Index past the final part of the
                    // Parent Segment means part 0 of the following one.
                    Some(count) if p >= count => {
                        msn += 1;
                        part = Some(0);
                        continue;
                    }
                    _ => return Ok(Reload::Ready),
                }
            }
            if msn == self.open_msn {
                return match part {
                    None => Ok(Reload::Wait { msn, part: None }),
                    Some(p) if p < self.open_parts => Ok(Reload::Ready),
                    Some(p) => {
                        // How far past the last published part this is.
                        if p + 1 - self.open_parts > limit {
                            Err(BadRequest("_HLS_part beyond the Advance Part Limit"))
                        } else {
                            Ok(Reload::Wait { msn, part: Some(p) })
                        }
                    }
                };
            }
            // msn == open_msn + 1: the segment after the one being built.
            // Ahead lie at least the part being built (a segment always ends
            // with one more part) and parts 0..=p of the next segment.
            if let Some(p) = part
                && p.saturating_add(2) > limit
            {
                return Err(BadRequest("_HLS_part beyond the Advance Part Limit"));
            }
            return Ok(Reload::Wait { msn, part });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queries() {
        assert_eq!(Directives::from_query(""), Ok(Directives::default()));
        assert_eq!(
            Directives::from_query("_HLS_msn=12&_HLS_part=3"),
            Ok(Directives {
                msn: Some(12),
                part: Some(3)
            })
        );
        assert_eq!(
            Directives::from_query("_HLS_msn=12&_HLS_skip=YES&t=99"),
            Ok(Directives {
                msn: Some(12),
                part: None
            })
        );
        for bad in [
            "_HLS_part=1",
            "_HLS_msn=",
            "_HLS_msn=-1",
            "_HLS_msn=1.5",
            "_HLS_msn=0x10",
            "_HLS_msn=01",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_msn=99999999999999999999999",
            "_HLS_msn",
        ] {
            assert!(Directives::from_query(bad).is_err(), "{bad}");
        }
    }
}
