//! A compact list of URLs: one text buffer and an end offset per URL.
//!
//! A million URLs as `Vec<String>` cost a heap allocation each (about 72 bytes per URL beyond
//! its text); here they cost their text plus 4 bytes. Jobs hold their URLs for as long as they
//! run, so this is most of a big fetch job's memory.

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// URLs in order, stored back to back.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlList {
    text: String,
    /// `ends[i]` is the end of URL i in `text`; URL i starts where URL i-1 ends.
    ends: Vec<u32>,
}

impl UrlList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one URL.
    ///
    /// # Panics
    /// When the list's text would exceed 4 GiB (far beyond any accepted request).
    pub fn push(&mut self, url: &str) {
        self.text.push_str(url);
        let end = u32::try_from(self.text.len()).expect("URL list larger than 4 GiB");
        self.ends.push(end);
    }

    /// Number of URLs.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// URL `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        Some(&self.text[start..end])
    }

    /// Every URL, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// Bytes of URL text, without the offsets.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// URLs `range` joined by newlines (URLs never contain one: validation refuses control
    /// characters), the form the store keeps them in.
    pub fn lines(&self, range: std::ops::Range<usize>) -> String {
        let mut out = String::new();
        for (n, i) in range.enumerate() {
            if n > 0 {
                out.push('\n');
            }
            out.push_str(self.get(i).unwrap_or_default());
        }
        out
    }

    /// Appends the newline-separated URLs of `text` (the inverse of [`UrlList::lines`]).
    pub fn extend_from_lines(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        for line in text.split('\n') {
            self.push(line);
        }
    }
}

impl fmt::Debug for UrlList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first: Vec<&str> = self.iter().take(3).collect();
        f.debug_struct("UrlList")
            .field("len", &self.len())
            .field("first", &first)
            .finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for UrlList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut list = UrlList::new();
        for url in iter {
            list.push(url.as_ref());
        }
        list
    }
}

impl From<Vec<String>> for UrlList {
    fn from(urls: Vec<String>) -> Self {
        urls.iter().collect()
    }
}

impl Serialize for UrlList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for url in self.iter() {
            seq.serialize_element(url)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for UrlList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UrlsVisitor;
        impl<'de> Visitor<'de> for UrlsVisitor {
            type Value = UrlList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of URLs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UrlList, A::Error> {
                let mut list = UrlList::new();
                while let Some(url) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    list.push(&url);
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(UrlsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip_through_lines_and_json() {
        let list: UrlList = ["http://a/1", "http://b/22", "https://c/"]
            .into_iter()
            .collect();
        assert_eq!(list.len(), 3);
        assert_eq!(list.get(1), Some("http://b/22"));
        assert_eq!(list.get(3), None);
        let mut again = UrlList::new();
        again.extend_from_lines(&list.lines(0..2));
        again.extend_from_lines(&list.lines(2..3));
        assert_eq!(again, list);
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["http://a/1","http://b/22","https://c/"]"#);
        assert_eq!(serde_json::from_str::<UrlList>(&json).unwrap(), list);
    }
}
