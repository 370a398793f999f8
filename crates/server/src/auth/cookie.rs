//! The session cookie: HttpOnly so scripts cannot read it, SameSite=Lax so
//! other sites cannot make a logged-in user's browser post to the API.

use axum::http::{header, HeaderMap};

pub const SESSION_COOKIE: &str = "confcast_session";

/// The value of cookie `name` in the request, if any.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value that stores the session token.
pub fn set_session(token: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_session(secure: bool) -> String {
    set_session("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_one_cookie_among_many() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; confcast_session=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(read(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(read(&headers, "b").as_deref(), Some("2"));
        assert_eq!(read(&headers, "c"), None);
    }

    #[test]
    fn session_cookie_attributes() {
        let c = set_session("t", 60, false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Max-Age=60"));
        assert!(set_session("t", 60, true).ends_with("; Secure"));
    }
}
