//! A streaming reader of tar archives (ustar, GNU and POSIX pax), for archives nobody vetted:
//! every header's checksum is checked, a pax header is bounded ([`MAX_PAX_LEN`]) and so is
//! every path and link target, whether from a GNU long-name entry or a pax record
//! ([`MAX_NAME_LEN`]), nothing is written anywhere, and entry paths are made
//! absolute inside the archive's root by [`normalize`] (a path that climbs out of the root is
//! an error, not a file outside it).

use std::io::{self, Read};

/// One tar block.
pub const BLOCK: u64 = 512;
/// The longest path or link target taken from a GNU long-name entry or a pax record.
pub const MAX_NAME_LEN: u64 = 64 * 1024;
/// The largest pax extended header read (its records name a path, a link and a size).
pub const MAX_PAX_LEN: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    /// A hard link to the entry at this path (as the archive spells it).
    HardLink(String),
    /// A symbolic link to this path (as the archive spells it).
    Symlink(String),
    Dir,
    /// A device, a FIFO, a GNU sparse file or anything else: not read.
    Other,
}

#[derive(Debug, Clone)]
pub struct Header {
    /// The path as the archive spells it (see [`normalize`]).
    pub path: String,
    pub kind: EntryKind,
    /// Bytes of data that follow the header.
    pub size: u64,
}

/// Reads the entries of a tar stream one after the other: [`Reader::next_entry`] gives a header,
/// and [`Reader::data`] the entry's bytes until the next call (what is not read is skipped).
pub struct Reader<R> {
    inner: R,
    /// Unread bytes of the current entry, and the padding after them.
    remaining: u64,
    padding: u64,
    /// Bytes read so far (the offset of the next block, for messages).
    offset: u64,
    done: bool,
}

/// A stream whose bytes the reader can pass over: by reading them through (the default), or,
/// for a file read by position, by moving on without reading.
pub trait Skip: Read {
    /// Passes over `n` bytes; how many there were.
    fn skip(&mut self, n: u64) -> io::Result<u64>
    where
        Self: Sized,
    {
        io::copy(&mut self.take(n), &mut io::sink())
    }
}

impl Skip for &[u8] {}

impl<R: Read + Skip> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, remaining: 0, padding: 0, offset: 0, done: false }
    }

    /// How many bytes of the stream have been read: after [`Reader::next_entry`], where the
    /// entry's data starts.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The rest of the current entry's data.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { reader: self }
    }

    /// The next entry, or `None` at the end of the archive. Long names, long link targets and
    /// pax records are applied to the entry they precede.
    pub fn next_entry(&mut self) -> io::Result<Option<Header>> {
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            self.skip_rest()?;
            if self.done {
                return Ok(None);
            }
            let at = self.offset;
            let mut block = [0u8; BLOCK as usize];
            match read_block(&mut self.inner, &mut block)? {
                0 => {
                    // (an archive that ends without its two zero blocks)
                    self.done = true;
                    return Ok(None);
                }
                n if n < block.len() => return Err(bad(at, "the archive is cut off inside a header")),
                _ => {}
            }
            self.offset += BLOCK;
            if block.iter().all(|b| *b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&block).map_err(|why| bad(at, &why))?;
            let size = number(&block[124..136]).ok_or_else(|| bad(at, "its size field is not a number"))?;
            self.remaining = size;
            self.padding = (BLOCK - size % BLOCK) % BLOCK;
            let typeflag = block[156];
            match typeflag {
                b'L' | b'K' => {
                    let s = self.read_small(size, MAX_NAME_LEN, at)?;
                    let s = String::from_utf8_lossy(s.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
                    if typeflag == b'L' {
                        long_name = Some(s)
                    } else {
                        long_link = Some(s)
                    }
                    continue;
                }
                b'x' => {
                    let records = self.read_small(size, MAX_PAX_LEN, at)?;
                    for (key, value) in pax_records(&records).map_err(|why| bad(at, &why))? {
                        if matches!(key, "path" | "linkpath") && value.len() as u64 > MAX_NAME_LEN {
                            return Err(bad(
                                at,
                                &format!("a pax {key} of {} bytes (more than {MAX_NAME_LEN})", value.len()),
                            ));
                        }
                        match key {
                            "path" => long_name = Some(value.to_string()),
                            "linkpath" => long_link = Some(value.to_string()),
                            "size" => {
                                pax_size = Some(value.parse().map_err(|_| bad(at, "its pax size is not a number"))?)
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' => {
                    // global pax records: nothing bpfcap needs
                    self.read_small(size, MAX_PAX_LEN, at)?;
                    continue;
                }
                _ => {}
            }
            if let Some(s) = pax_size {
                self.remaining = s;
                self.padding = (BLOCK - s % BLOCK) % BLOCK;
            }
            // (POSIX ustar has a name prefix at 345; GNU's "ustar  " keeps times there)
            let ustar = &block[257..263] == b"ustar\0";
            let path = long_name.take().unwrap_or_else(|| {
                let name = field(&block[0..100]);
                let prefix = if ustar { field(&block[345..500]) } else { String::new() };
                if prefix.is_empty() { name } else { format!("{prefix}/{name}") }
            });
            let link = long_link.take().unwrap_or_else(|| field(&block[157..257]));
            let kind = match typeflag {
                // (an old-style archive marks a directory by the slash its name ends with)
                0 if path.ends_with('/') => EntryKind::Dir,
                b'0' | 0 | b'7' => EntryKind::File,
                b'1' => EntryKind::HardLink(link),
                b'2' => EntryKind::Symlink(link),
                b'5' => EntryKind::Dir,
                _ => EntryKind::Other,
            };
            return Ok(Some(Header { path, kind, size: self.remaining }));
        }
    }

    /// The whole data of the current entry, which must be at most `max` bytes.
    fn read_small(&mut self, size: u64, max: u64, at: u64) -> io::Result<Vec<u8>> {
        if size > max {
            return Err(bad(at, &format!("a long-name or pax header of {size} bytes (more than {max})")));
        }
        let mut v = Vec::with_capacity(size as usize);
        self.data().read_to_end(&mut v)?;
        if (v.len() as u64) < size {
            return Err(bad(at, "the archive is cut off inside an entry"));
        }
        Ok(v)
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self
            .remaining
            .checked_add(self.padding)
            .ok_or_else(|| bad(self.offset, "an entry larger than any file"))?;
        if n > 0 {
            let skipped = self.inner.skip(n)?;
            self.offset += skipped;
            self.remaining = 0;
            self.padding = 0;
            if skipped < n {
                return Err(bad(self.offset, "the archive is cut off inside an entry"));
            }
        }
        Ok(())
    }
}

/// The data of a [`Reader`]'s current entry.
pub struct Data<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read + Skip> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        let want = buf.len().min(usize::try_from(r.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad(r.offset, "the archive is cut off inside an entry"));
        }
        r.remaining -= n as u64;
        r.offset += n as u64;
        Ok(n)
    }
}

/// Fills `block` as far as the stream goes; how many bytes it got.
fn read_block(r: &mut impl Read, block: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn bad(at: u64, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("not a valid tar archive at byte {at}: {why}"))
}

/// A NUL-terminated header field.
fn field(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}

/// An octal number field, or a GNU base-256 one (first byte 0x80).
fn number(b: &[u8]) -> Option<u64> {
    if b[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(b[0] & 0x7f);
        for &c in &b[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(c))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The header's checksum: the sum of its bytes with the checksum field read as spaces.
fn check_sum(block: &[u8]) -> Result<(), String> {
    let want = number(&block[148..156]).ok_or("its checksum field is not a number")?;
    let sum: u64 =
        block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u64::from(*b) }).sum();
    if sum != want { Err(format!("header checksum {want} but the header sums to {sum}")) } else { Ok(()) }
}

/// The records of a pax extended header: `LEN key=value\n` each.
fn pax_records(mut b: &[u8]) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() && b[0] != 0 {
        let sp = b.iter().position(|c| *c == b' ').ok_or("a pax record without a length")?;
        let len: usize = std::str::from_utf8(&b[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a pax record length that is not a number")?;
        if len <= sp + 1 || len > b.len() {
            return Err("a pax record longer than its header".into());
        }
        let record = std::str::from_utf8(&b[sp + 1..len]).map_err(|_| "a pax record that is not UTF-8")?;
        let record = record.strip_suffix('\n').ok_or("a pax record without its newline")?;
        if let Some((k, v)) = record.split_once('=') {
            out.push((k, v));
        }
        b = &b[len..];
    }
    Ok(out)
}

/// `path` as an absolute path inside the archive's root: `./usr//bin/../sbin/x` is
/// `/usr/sbin/x`. A path that climbs above the root is an error.
pub fn normalize(path: &str) -> Result<String, String> {
    let climbs = || format!("the entry {path:?} climbs out of the archive's root");
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(climbs)?;
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for `name` of `size` bytes and type `flag`, with its checksum.
    pub(crate) fn header(name: &str, size: u64, flag: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn entry(name: &str, data: &[u8], flag: u8) -> Vec<u8> {
        let mut v = header(name, data.len() as u64, flag);
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v
    }

    #[test]
    fn entries_long_names_and_pax_paths() {
        let long = format!("usr/{}/x", "d".repeat(200));
        let mut a = entry("./usr/bin/a", b"hello", b'0');
        a.extend(entry("././@LongLink", long.as_bytes(), b'L'));
        a.extend(entry("ignored", b"", b'0'));
        a.extend(entry("pax", b"19 path=usr/sbin/b\n", b'x'));
        a.extend(entry("ignored2", b"xy", b'0'));
        a.extend(entry("usr/lib", b"", b'5'));
        a.extend(vec![0u8; 1024]);
        let mut r = Reader::new(&a[..]);
        let h = r.next_entry().unwrap().unwrap();
        assert_eq!((h.path.as_str(), h.size, &h.kind), ("./usr/bin/a", 5, &EntryKind::File));
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(r.next_entry().unwrap().unwrap().path, long);
        let h = r.next_entry().unwrap().unwrap();
        assert_eq!((h.path.as_str(), h.size), ("usr/sbin/b", 2), "the pax path, and the data not read is skipped");
        assert_eq!(r.next_entry().unwrap().unwrap().kind, EntryKind::Dir);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn hostile_headers_are_errors() {
        let mut bad_sum = header("a", 0, b'0');
        bad_sum[0] = b'b';
        assert!(Reader::new(&bad_sum[..]).next_entry().unwrap_err().to_string().contains("checksum"));
        let huge = header("././@LongLink", 1 << 20, b'L');
        assert!(Reader::new(&huge[..]).next_entry().unwrap_err().to_string().contains("more than"));
        let cut = &entry("a", b"0123456789", b'0')[..512 + 4];
        let mut r = Reader::new(cut);
        r.next_entry().unwrap().unwrap();
        assert!(r.next_entry().is_err(), "an entry cut off");
        assert!(Reader::new(&[1u8; 100][..]).next_entry().is_err(), "a header cut off");
    }

    #[test]
    fn gnu_and_old_style_headers() {
        // GNU's magic ("ustar  ") keeps times where ustar keeps a name prefix
        let mut gnu = header("usr/bin/a", 0, b'0');
        gnu[257..265].copy_from_slice(b"ustar  \0");
        gnu[345..356].copy_from_slice(b"14743223060");
        gnu[148..156].copy_from_slice(b"        ");
        let sum: u64 = gnu.iter().map(|b| u64::from(*b)).sum();
        gnu[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert_eq!(Reader::new(&gnu[..]).next_entry().unwrap().unwrap().path, "usr/bin/a");
        // an old-style archive marks a directory by its name's slash (type NUL)
        let dir = header("d/", 0, 0);
        assert_eq!(Reader::new(&dir[..]).next_entry().unwrap().unwrap().kind, EntryKind::Dir);
        // a size that overflows when its padding is added is an error, not a panic
        let mut huge = header("d", 0, b'5');
        huge[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        huge[148..156].copy_from_slice(b"        ");
        let sum: u64 = huge.iter().map(|b| u64::from(*b)).sum();
        huge[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut r = Reader::new(&huge[..]);
        r.next_entry().unwrap().unwrap();
        assert!(r.next_entry().is_err());
    }

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(normalize("./usr//bin/../sbin/x").unwrap(), "/usr/sbin/x");
        assert_eq!(normalize("/etc/").unwrap(), "/etc");
        assert_eq!(normalize("./").unwrap(), "/");
        assert!(normalize("../etc/passwd").is_err());
        assert!(normalize("usr/../../x").is_err());
    }
}
