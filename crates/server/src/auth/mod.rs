//! Who is asking: passwords, sessions, and the brakes on guessing.

pub mod cookie;
pub mod password;
pub mod rate_limit;
pub mod session;
