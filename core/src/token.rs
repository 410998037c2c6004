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

/// A secret whose `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for sending or comparing it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A token from its text or, failing that, its file, checked by [`token_text`]. `what` names
/// the text's source in errors (e.g. "--token / CONCUR_TOKEN").
///
/// # Errors
/// The file is unreadable, or the token empty or unprintable.
pub fn load_token(
    text: Option<String>,
    file: Option<&std::path::Path>,
    what: &str,
) -> Result<Option<Secret>, String> {
    let (text, source) = match (text, file) {
        (Some(text), _) => (text, what.to_string()),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?,
            format!("token file {}", path.display()),
        ),
        (None, None) => return Ok(None),
    };
    Ok(Some(Secret(token_text(&text, &source)?.to_string())))
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

    #[test]
    fn tokens_load_from_text_first_then_files() {
        let dir = std::env::temp_dir().join(format!("concur-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let secret = load_token(None, Some(&file), "x").unwrap().unwrap();
        assert_eq!(secret.expose(), "from-file");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        let secret = load_token(Some("t".into()), Some(&file), "x")
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), "t");
        assert!(load_token(None, Some(&dir.join("missing")), "x").is_err());
        assert_eq!(load_token(None, None, "x"), Ok(None));
        let _ = std::fs::remove_dir_all(dir);
    }
}
