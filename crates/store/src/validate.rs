//! The rules for names people type. Checked before anything is stored.

/// Lower-cases and checks a username: 3-32 characters of `a-z 0-9 _ . -`.
///
/// Upper-case letters are accepted and folded, which makes usernames unique
/// regardless of case ("Alice" and "alice" are the same account).
pub fn username(input: &str) -> Result<String, String> {
    let name = input.to_ascii_lowercase();
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err("username must be 3 to 32 characters long".into());
    }
    if !name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')) {
        return Err("username may contain only letters a-z, digits 0-9, '_', '.' and '-'".into());
    }
    Ok(name)
}

/// Trims and checks a display name: 1-64 characters, no control characters.
/// Any other Unicode is kept verbatim.
pub fn display_name(input: &str) -> Result<String, String> {
    text("display name", input, 64)
}

/// Trims and checks a room title: 1-100 characters, no control characters.
pub fn room_title(input: &str) -> Result<String, String> {
    text("title", input, 100)
}

/// Checks a password: at least 8 characters (and at most 1024 bytes, so a
/// huge body cannot make hashing expensive).
pub fn password(input: &str) -> Result<(), String> {
    if input.chars().count() < 8 {
        return Err("password must be at least 8 characters long".into());
    }
    if input.len() > 1024 {
        return Err("password must be at most 1024 bytes long".into());
    }
    Ok(())
}

fn text(what: &str, input: &str, max: usize) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(format!("{what} must be at most {max} characters long"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username("Alice_01").as_deref(), Ok("alice_01"));
        assert_eq!(username("a.b-c").as_deref(), Ok("a.b-c"));
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username(&"a".repeat(32)).is_ok());
        assert!(username("with space").is_err());
        assert!(username("zoë").is_err());
        assert!(username("robert'); drop table users;--").is_err());
    }

    #[test]
    fn display_names_keep_unicode_and_markup_verbatim() {
        assert_eq!(display_name("  Zoë 🎥 ").as_deref(), Ok("Zoë 🎥"));
        assert_eq!(display_name("<script>x</script>").as_deref(), Ok("<script>x</script>"));
        assert!(display_name("   ").is_err());
        assert!(display_name("a\u{0}b").is_err());
        assert!(display_name(&"é".repeat(65)).is_err());
    }

    #[test]
    fn passwords() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password("éééééééé").is_ok());
        assert!(password(&"x".repeat(1025)).is_err());
    }
}
