//! The one rule for shared-secret tokens, applied by the coordinator, workers and the CLI alike:
//! surrounding whitespace (a token file's final newline) is dropped, and what remains must be
//! non-empty printable ASCII, since it travels in an HTTP header.

/// The usable token in `text`, or a message naming `source` (e.g. "token file /etc/concur/token").
///
/// # Errors
/// Empty, or characters that cannot be sent in a header.
pub fn token_text<'a>(text: &'a str, source: &str) -> Result<&'a str, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{source} is empty"));
    }
    if !text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "{source} contains characters that cannot be sent in a header (use printable ASCII)"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_must_be_printable() {
        assert_eq!(token_text("abc\n", "t"), Ok("abc"));
        assert!(token_text("  \n", "t").unwrap_err().contains("t is empty"));
        assert!(token_text("a b", "t").is_err());
        assert!(token_text("é", "t").is_err());
    }
}
