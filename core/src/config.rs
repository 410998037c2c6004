//! Config files, the one way both binaries read them: TOML whose keys are the long flag names
//! with `_` for `-`, durations written as in flags ("5s", "500ms"). A flag (or its environment
//! variable) wins over the file, the file over the built-in default, and every binary merges a
//! setting the same way: `flag.or(file.key).unwrap_or(DEFAULT)`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::path::Path;
use std::time::Duration;

/// Reads the config file at `path`, or the defaults when there is none. Unknown keys are
/// refused by the settings type (`#[serde(deny_unknown_fields)]`).
///
/// # Errors
/// The file cannot be read or is not valid for `T` (the message names the file and the key).
pub fn load<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, String> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
}

/// Deserialises an optional duration written as in flags ("5s", "500ms", "1h 30m"), for
/// `#[serde(default, deserialize_with = "concur_core::config::duration")]`.
///
/// # Errors
/// The text is not a duration.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    text.map(|text| {
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("'{text}' is not a duration (e.g. 5s, 500ms): {e}"))
        })
    })
    .transpose()
}

/// A list flag (repeated or comma-separated) when given, else the file's list.
pub fn list(flag: Vec<String>, file: Option<Vec<String>>) -> Vec<String> {
    if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default, deserialize_with = "duration")]
        timeout: Option<Duration>,
        slots: Option<u32>,
    }

    #[test]
    fn files_read_durations_and_name_bad_keys() {
        let dir = std::env::temp_dir().join(format!("concur-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "timeout = \"1500ms\"\nslots = 3\n").unwrap();
        let read: Settings = load(Some(&path)).unwrap();
        assert_eq!(read.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(read.slots, Some(3));
        std::fs::write(&path, "timeout = \"soon\"\n").unwrap();
        let err = load::<Settings>(Some(&path)).unwrap_err();
        assert!(err.contains("timeout") && err.contains("soon"), "{err}");
        std::fs::write(&path, "slotz = 1\n").unwrap();
        assert!(load::<Settings>(Some(&path)).unwrap_err().contains("slotz"));
        assert!(load::<Settings>(None).unwrap().slots.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_list_flag_wins_over_the_file() {
        assert_eq!(list(vec!["a".into()], Some(vec!["b".into()])), ["a"]);
        assert_eq!(list(Vec::new(), Some(vec!["b".into()])), ["b"]);
        assert!(list(Vec::new(), None).is_empty());
    }
}
