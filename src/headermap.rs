//! proxy-wasm's serialized header map, both ways: the pair count, each pair's name and value
//! lengths, then each name and value followed by a NUL (all numbers u32, little-endian).
//!
//! A request's headers are read in place from the one buffer the host hands over: names and values
//! are borrowed from it, so reading them costs no allocation per header (the SDK's `get_map` makes
//! two strings per header, and panics on a value that is not UTF-8).

/// A request's header names and values, as UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    /// Every name and value, each followed by a NUL, in the host's order.
    text: String,
    /// The length of each pair's name and value.
    lengths: Vec<(usize, usize)>,
}

impl HeaderMap {
    /// The map as the host serialized it. Its text is checked as UTF-8 in one pass, in place:
    /// the length table is cut off the front of the host's buffer, and the pairs are then
    /// borrowed from the text at the offsets it gives, which fall next to NULs (ASCII), so on
    /// character boundaries. Names and values that are not UTF-8 (HTTP allows obs-text bytes)
    /// are converted lossily, so one Latin-1 header cannot make the request unreadable; a token
    /// with such bytes is then refused as malformed. A truncated map keeps the pairs before the
    /// damage.
    pub fn from_host(mut bytes: Vec<u8>) -> HeaderMap {
        let mut pairs = raw_pairs(&bytes);
        let mut lengths = Vec::with_capacity(pairs.most());
        lengths.extend(pairs.by_ref().map(|(n, v)| (n.len(), v.len())));
        // The pairs read span from the end of the table to where reading stopped.
        let end = pairs.data.min(bytes.len());
        let start = pairs.start.min(end);
        bytes.truncate(end);
        bytes.drain(..start);
        match String::from_utf8(bytes) {
            Ok(text) => HeaderMap { text, lengths },
            Err(e) => HeaderMap::lossy(e.as_bytes(), &lengths),
        }
    }

    /// The map of text that is not all UTF-8, each name and value converted on its own.
    fn lossy(text: &[u8], lengths: &[(usize, usize)]) -> HeaderMap {
        let (mut at, mut out) = (0, HeaderMap { text: String::new(), lengths: Vec::new() });
        let mut item = |len: usize| {
            let part = String::from_utf8_lossy(text.get(at..at + len).unwrap_or_default());
            at += len + 1;
            part
        };
        for &(name_len, value_len) in lengths {
            let (name, value) = (item(name_len), item(value_len));
            out.lengths.push((name.len(), value.len()));
            for part in [name, value] {
                out.text.push_str(&part);
                out.text.push('\0');
            }
        }
        out
    }

    /// The pairs in the host's order (a repeated header appears once per value).
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        let mut at = 0;
        let mut item = |len: usize| {
            let part = self.text.get(at..at + len);
            at += len + 1;
            part
        };
        let mut pairs = Vec::with_capacity(self.lengths.len());
        pairs.extend(self.lengths.iter().map_while(|&(name, value)| Some((item(name)?, item(value)?))));
        pairs
    }
}

/// The pairs of a serialized map, as far as it is well formed; [`Pairs::whole`] then tells whether
/// that was all of it.
pub fn raw_pairs(bytes: &[u8]) -> Pairs<'_> {
    let count = u32_at(bytes, 0).unwrap_or(0);
    let data = count.checked_mul(8).and_then(|n| n.checked_add(4)).unwrap_or(usize::MAX);
    Pairs { bytes, count, next: 0, start: data, data }
}

/// The pairs of a serialized map, read lazily: a huge count in damaged bytes allocates nothing.
pub struct Pairs<'a> {
    bytes: &'a [u8],
    count: usize,
    /// The index of the next pair.
    next: usize,
    /// Where the first name starts (after the length table).
    start: usize,
    /// Where the next name starts.
    data: usize,
}

impl<'a> Pairs<'a> {
    /// Whether every counted pair was read and no byte follows the last.
    pub fn whole(&self) -> bool {
        self.next == self.count && self.data == self.bytes.len()
    }

    /// The most pairs the bytes can hold (each takes 8 bytes of lengths and 2 NULs), so that a
    /// huge count in damaged bytes reserves no more than they are long.
    pub fn most(&self) -> usize {
        self.count.min(self.bytes.len() / 10)
    }

    /// `len` bytes at the data position, which a NUL (not part of the item) must follow.
    fn item(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.data.checked_add(len)?;
        let value = self.bytes.get(self.data..end)?;
        (self.bytes.get(end) == Some(&0)).then(|| {
            self.data = end + 1;
            value
        })
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let lengths = self.next.checked_mul(8)?.checked_add(4)?;
        let (name_len, value_len) =
            (u32_at(self.bytes, lengths)?, u32_at(self.bytes, lengths.checked_add(4)?)?);
        let pair = (self.item(name_len)?, self.item(value_len)?);
        self.next += 1;
        Some(pair)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// `pairs` serialized (for local replies, and for a map rebuilt lossily).
pub fn serialize(pairs: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let text: usize = pairs.iter().map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2).sum();
    let mut bytes = Vec::with_capacity(4 + 8 * pairs.len() + text);
    bytes.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        bytes.extend_from_slice(&len(name.as_ref().len()));
        bytes.extend_from_slice(&len(value.as_ref().len()));
    }
    for (name, value) in pairs {
        for part in [name.as_ref(), value.as_ref()] {
            bytes.extend_from_slice(part);
            bytes.push(0);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: [(&str, &str); 4] =
        [(":path", "/a?b=c"), ("authorization", "Bearer x.y.z"), ("empty", ""), ("cookie", "a=1")];

    #[test]
    fn pairs_read_back_in_order() {
        let map = HeaderMap::from_host(serialize(&PAIRS));
        assert_eq!(map.pairs(), PAIRS);
        assert_eq!(HeaderMap::from_host(serialize(&[] as &[(&str, &str)])).pairs(), vec![]);
        assert_eq!(HeaderMap::from_host(vec![]).pairs(), vec![], "no bytes: no headers");
        let utf8 = [("x-caf\u{e9}", "\u{e9}t\u{e9} \u{1f600}"), ("b", "")];
        assert_eq!(HeaderMap::from_host(serialize(&utf8)).pairs(), utf8, "multi-byte UTF-8 kept as is");
    }

    #[test]
    fn the_wire_format_is_the_abis() {
        let bytes = serialize(&[("ab", "c")]);
        assert_eq!(bytes, [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', 0, b'c', 0]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_lossily() {
        let mut bytes = serialize(&[("x-latin", "caf?"), ("authorization", "Bearer a.b.c")]);
        let at = bytes.iter().position(|b| *b == b'?').unwrap();
        bytes[at] = 0xe9;
        let map = HeaderMap::from_host(bytes);
        assert_eq!(map.pairs(), [("x-latin", "caf\u{fffd}"), ("authorization", "Bearer a.b.c")]);
    }

    #[test]
    fn a_damaged_map_keeps_the_pairs_before_the_damage() {
        let whole = serialize(&PAIRS);
        for cut in 0..whole.len() {
            let pairs = HeaderMap::from_host(whole[..cut].to_vec()).pairs().len();
            assert!(pairs < PAIRS.len(), "cut at {cut}: {pairs}");
        }
        let mut no_nul = whole.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'!';
        assert_eq!(HeaderMap::from_host(no_nul).pairs(), PAIRS[..3]);
        let mut huge_count = whole;
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::from_host(huge_count).pairs(), vec![], "lengths read from the data section");
    }
}
