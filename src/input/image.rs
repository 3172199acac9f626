//! Container images and root filesystems in one file, as inputs: an OCI image layout (a
//! directory holding `oci-layout` and `index.json`), a docker-archive (`docker save`, `skopeo
//! copy … docker-archive:`), an OCI archive (the layout in one tar, `skopeo copy … oci-archive:`)
//! and a plain root filesystem tarball. Nothing is unpacked to disk.
//!
//! - Layers are streamed, gzip and zstd decompressed on the fly (found by their first bytes,
//!   whatever the media type says), on every core where they can be reached apart (an OCI
//!   layout's blobs, the layers of an uncompressed archive; a compressed archive is one
//!   stream). Each layer is read once: every file is judged as a file found in a directory
//!   is ([`super::host`]: one small read unless it is an ELF file or an archive), and every
//!   path, whiteout, opaque directory and link is listed.
//! - The image's files are then what the layers make of them in order ([`Merged`]): a file
//!   an upper layer deletes (`.wh.NAME`), hides (`.wh..wh..opq` in a directory above it) or
//!   replaces (any entry at its path, or a non-directory at a directory above it) is gone, and
//!   within one layer the last entry at a path is the file; a hard link holds what its target
//!   holds, and so does a symbolic link to a file of the image (resolved component by
//!   component inside the image as the kernel resolves it in the container, `..` at the root
//!   staying there, at most 40 links; as a directory walk reads a link to a file), for at most
//!   [`MAX_LINKS_PER_FILE`] links to one file.
//! - With an index that lists several platforms, `--platform` chooses (the default: the
//!   running machine's). Attestation manifests (`unknown/unknown`) are never chosen. An index
//!   of one image that names no platform serves any.
//! - In an archive, layers are the tar streams where the formats keep them (`ID/layer.tar`,
//!   `DIGEST.tar`, `blobs/ALG/DIGEST`); the documents (manifest.json, index.json) say which.
//! - Objects are named by their path inside the image: `/usr/sbin/tool#name`.
//!
//! Hostile archives: a header that does not check out, a path that climbs out of the root, a
//! long name or pax record over its bound, a top-level document over [`MAX_JSON`] or documents
//! over [`MAX_JSON_TOTAL`], paths over [`MAX_PATH_BYTES`] in one layer, decompressed streams
//! that give more than [`MAX_EXPANSION`] times the image's size in all (at least
//! [`MIN_EXPANSION_LIMIT`]; nested compression shares the budget) are an error naming the
//! image. Memory is bounded by the largest file read (at most
//! [`super::embedded::MAX_SCAN_SIZE`]) and those bounds, and no link leads out of the image.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::host::InFile;
use super::tar::{self, EntryKind};
use super::{InputError, Inputs, host};

/// The largest JSON document (index, manifest, configuration) read from an image...
pub const MAX_JSON: u64 = 4 << 20;
/// ...and all of them together.
pub const MAX_JSON_TOTAL: u64 = 64 << 20;
/// An image's decompressed streams may give at most this many times the image's size in
/// all...
pub const MAX_EXPANSION: u64 = 1000;
/// ...or this many bytes, whichever is more (a small layer of zeros is no bomb).
pub const MIN_EXPANSION_LIMIT: u64 = 1 << 30;
/// How deep an index may point at further indexes.
const MAX_INDEX_DEPTH: usize = 4;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A platform, as OCI indexes name them (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `OS/ARCH[/VARIANT]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.into(), architecture: arch.into(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform { os: os.into(), architecture: arch.into(), variant: Some(v.into()) })
            }
            _ => Err(format!("{s:?} is not OS/ARCH or OS/ARCH/VARIANT (linux/amd64, linux/arm64/v8)")),
        }
    }

    /// The running machine's, in Go's names (GOARCH), as OCI uses them.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform { os: std::env::consts::OS.into(), architecture: architecture.into(), variant: None }
    }

    /// Whether an index entry for `other` serves this platform (a variant asked for must
    /// match; none asked for takes any).
    fn serves(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Whether `dir` is an OCI image layout.
pub fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() && dir.join("index.json").is_file()
}

/// Whether a file whose first bytes are `head` (at least 262 of them, if the file has them)
/// is an archive bpfcap reads as an image: gzip, zstd, or a tar.
pub fn is_archive(head: &[u8]) -> bool {
    is_compressed(head) || head.get(257..262) == Some(b"ustar")
}

/// How many bytes of a file [`is_archive`] needs.
pub const HEAD_LEN: usize = 512;

/// The objects of the image at `path` (an OCI layout directory or an archive), for `platform`.
pub fn load(path: &Path, display: &str, platform: Option<&Platform>) -> Result<(Inputs, Vec<String>), InputError> {
    let err = |why: String| InputError::Image { path: display.to_string(), why };
    let layers = if path.is_dir() {
        layout_layers(path, platform).map_err(err)?
    } else {
        archive_layers(path, platform).map_err(err)?
    };
    let mut merged = Merged::default();
    let mut warnings = Vec::new();
    for mut layer in layers {
        warnings.append(&mut layer.warnings);
        merged.apply(layer);
    }
    let (mut objects, linked) = merged.objects();
    warnings.extend(linked);
    for (_, o) in &mut objects {
        if let Some(src) = o.source.as_mut() {
            src.image = Some(path.to_path_buf());
        }
    }
    Ok((objects, warnings))
}

/// What one layer holds, read once.
#[derive(Debug, Default, Clone)]
struct Layer {
    /// Every entry's path, and whether it is a directory.
    entries: Vec<(String, bool)>,
    /// Paths deleted in the layers below (`.wh.NAME`).
    whiteouts: Vec<String>,
    /// Directories whose contents below are hidden (`.wh..wh..opq`).
    opaque: Vec<String>,
    /// The files that hold objects, and the objects.
    found: Vec<(String, Inputs)>,
    /// Hard links: (path, target path).
    links: Vec<(String, String)>,
    /// Symbolic links: (path, target as written).
    symlinks: Vec<(String, String)>,
    /// Where each path among `found`, `links` and `symlinks` is: a later entry at one of them
    /// replaces it (an archive may hold a path twice; the last one is the file).
    listed: std::collections::HashMap<String, (Listing, usize)>,
    /// The items of `found`, `links` and `symlinks` a later entry replaced: dropped once the
    /// layer is read ([`Layer::settle`]), each list passed over once.
    replaced: std::collections::HashSet<(Listing, usize)>,
    /// The bytes of the paths kept in `entries` (bounded: [`MAX_PATH_BYTES`]).
    path_bytes: u64,
    warnings: Vec<String>,
}

/// Which of a layer's lists an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Listing {
    Found,
    Link,
    Symlink,
}

/// The bytes of paths one layer may list (about a million entries of ordinary length: real
/// images have a few hundred thousand at most).
pub const MAX_PATH_BYTES: u64 = 64 << 20;

/// The image's files that hold objects, and its symbolic links, as the layers applied so far
/// make them.
#[derive(Debug, Default)]
struct Merged {
    files: BTreeMap<String, Inputs>,
    symlinks: BTreeMap<String, String>,
    /// Per file, how many links to it give its objects again (at most [`MAX_LINKS_PER_FILE`]).
    linked: BTreeMap<String, usize>,
}

/// How many symbolic links one path may go through (the kernel's limit, 40).
const MAX_LINK_HOPS: usize = 40;
/// How many links (hard or symbolic) to one file give its objects again under their own
/// paths; the others are counted in a warning (a file linked a thousand times is the same
/// objects a thousand times).
pub const MAX_LINKS_PER_FILE: usize = 32;

impl Merged {
    /// Applies the next layer up.
    fn apply(&mut self, layer: Layer) {
        for w in &layer.whiteouts {
            self.remove(w, true);
        }
        for d in &layer.opaque {
            self.remove_below(d);
        }
        for (p, is_dir) in &layer.entries {
            // an entry replaces what was at its path; a non-directory also what was below it
            self.remove(p, !is_dir);
        }
        for (p, objects) in layer.found {
            self.files.insert(p, objects);
        }
        for (p, target) in layer.links {
            if let Some(objects) = self.link_to(&target, &p) {
                self.files.insert(p, objects);
            }
        }
        self.symlinks.extend(layer.symlinks);
    }

    /// The objects of `file` renamed for a link at `link`, while the file's links are under
    /// [`MAX_LINKS_PER_FILE`].
    fn link_to(&mut self, file: &str, link: &str) -> Option<Inputs> {
        let objects = self.files.get(file)?;
        let n = self.linked.entry(file.to_string()).or_default();
        *n += 1;
        (*n <= MAX_LINKS_PER_FILE).then(|| renamed(objects, file, link))
    }

    /// The file that holds objects `link` leads to: its path resolved component by component
    /// as the kernel resolves it inside the container (a symbolic link anywhere on the way is
    /// followed, `..` at the root stays there), through at most [`MAX_LINK_HOPS`] links.
    fn resolve(&self, link: &str) -> Option<String> {
        let mut hops = 0;
        let mut done: Vec<String> = Vec::new();
        let mut todo: std::collections::VecDeque<String> = link.split('/').map(String::from).collect();
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let here = format!(
                "/{}",
                done.iter().chain(std::iter::once(&c)).map(String::as_str).collect::<Vec<_>>().join("/")
            );
            match self.symlinks.get(&here) {
                Some(target) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return None;
                    }
                    if target.starts_with('/') {
                        done.clear();
                    }
                    for t in target.split('/').rev() {
                        todo.push_front(t.to_string());
                    }
                }
                None => done.push(c),
            }
        }
        let path = format!("/{}", done.join("/"));
        self.files.contains_key(&path).then_some(path)
    }

    fn remove(&mut self, path: &str, below: bool) {
        self.files.remove(path);
        self.symlinks.remove(path);
        if below {
            self.remove_below(path);
        }
    }

    fn remove_below(&mut self, dir: &str) {
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        fn remove_prefixed<V>(map: &mut BTreeMap<String, V>, prefix: &str) {
            let doomed: Vec<String> = map
                .range(prefix.to_string()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
        remove_prefixed(&mut self.files, &prefix);
        remove_prefixed(&mut self.symlinks, &prefix);
    }

    /// The objects of the image, by path: those of its files, and again under each symbolic
    /// link to one of them (as a directory walk reads a link to a file); and the warnings.
    fn objects(mut self) -> (Inputs, Vec<String>) {
        let links: Vec<(String, String)> =
            self.symlinks.keys().filter_map(|l| Some((l.clone(), self.resolve(l)?))).collect();
        let mut linked = Vec::new();
        for (link, file) in links {
            if let Some(objects) = self.link_to(&file, &link) {
                linked.push((link, objects));
            }
        }
        self.files.extend(linked);
        let mut warnings = Vec::new();
        for (file, n) in &self.linked {
            if *n > MAX_LINKS_PER_FILE {
                warnings.push(format!(
                    "{file}: its objects are listed under {MAX_LINKS_PER_FILE} of the {n} links to it (the others are the same objects)"
                ));
            }
        }
        (self.files.into_values().flatten().collect(), warnings)
    }
}

/// The objects of the file `from`, named as those of `to` (a link to it).
fn renamed(objects: &Inputs, from: &str, to: &str) -> Inputs {
    objects
        .iter()
        .map(|(display, o)| {
            let display = format!("{to}{}", &display[from.len()..]);
            let mut o = o.clone();
            if let Some(src) = o.source.as_mut() {
                src.display = display.clone();
                src.file = to.into();
            }
            (display, o)
        })
        .collect()
}

impl Layer {
    /// Lists one entry of the layer; gives its path when it is a regular file, whose bytes
    /// the caller then judges.
    fn list(&mut self, h: tar::Header) -> Result<Option<String>, String> {
        let path = tar::normalize(&h.path)?;
        let (dir, base) = split(&path);
        if base == ".wh..wh..opq" {
            self.opaque.push(dir.to_string());
            return Ok(None);
        }
        if let Some(name) = base.strip_prefix(".wh.") {
            self.whiteouts.push(join(dir, name));
            return Ok(None);
        }
        self.path_bytes += path.len() as u64;
        if self.path_bytes > MAX_PATH_BYTES {
            return Err(format!("a layer lists more than {MAX_PATH_BYTES} bytes of paths"));
        }
        if let Some(earlier) = self.listed.remove(&path) {
            // the archive holds this path again: the later entry is the file
            self.replaced.insert(earlier);
        }
        self.entries.push((path.clone(), h.kind == EntryKind::Dir));
        match h.kind {
            EntryKind::File => return Ok(Some(path)),
            EntryKind::HardLink(target) => {
                self.listed.insert(path.clone(), (Listing::Link, self.links.len()));
                self.links.push((path, tar::normalize(&target)?))
            }
            EntryKind::Symlink(target) => {
                self.listed.insert(path.clone(), (Listing::Symlink, self.symlinks.len()));
                self.symlinks.push((path, target))
            }
            EntryKind::Dir | EntryKind::Other => {}
        }
        Ok(None)
    }

    /// The objects of the file at `path` (as [`Layer::list`] gave it).
    fn add_found(&mut self, path: String, objects: Inputs) {
        if !objects.is_empty() {
            self.listed.insert(path.clone(), (Listing::Found, self.found.len()));
            self.found.push((path, objects));
        }
    }

    /// The layer once every entry is listed: the items a later entry at their path replaced
    /// are gone.
    fn settle(mut self) -> Layer {
        let replaced = std::mem::take(&mut self.replaced);
        self.listed = Default::default();
        // the items of `list` left, by position
        fn drop_replaced<T>(items: &mut Vec<T>, list: Listing, replaced: &std::collections::HashSet<(Listing, usize)>) {
            let mut at = 0;
            items.retain(|_| {
                at += 1;
                !replaced.contains(&(list, at - 1))
            });
        }
        drop_replaced(&mut self.found, Listing::Found, &replaced);
        drop_replaced(&mut self.links, Listing::Link, &replaced);
        drop_replaced(&mut self.symlinks, Listing::Symlink, &replaced);
        self
    }
}

/// The entries of a compressed layer or archive, as [`open_tar`] opens them.
type LayerStream<'r> = tar::Reader<Bounded<'r, Box<dyn Read + 'r>>>;

/// A tar stream, decompressed if it is gzip or zstd, whose bytes are spent from the image's
/// `budget`.
fn open_tar<'r>(r: impl Read + 'r, budget: &'r Budget) -> Result<LayerStream<'r>, String> {
    let inner = decompress(r).map_err(|e| e.to_string())?;
    Ok(tar::Reader::new(Bounded { inner, budget }))
}

/// A tar stream in a file, read by position: `size` bytes at `offset` of `file`, plain or
/// compressed (told by its first bytes).
enum Opened<'f> {
    Plain(tar::Reader<Window<'f>>, InFile<'f>),
    Compressed(LayerStream<'f>),
}

fn open_at<'f>(
    file: &'f std::fs::File,
    offset: u64,
    size: u64,
    meter: Option<&'f Meter>,
    budget: &'f Budget,
) -> Result<Opened<'f>, String> {
    let window = Window { file, pos: offset, end: offset.saturating_add(size), meter: None };
    let (head, _) = peek(window, ZSTD_MAGIC.len()).map_err(|e| e.to_string())?;
    if is_compressed(&head) {
        // (what the window reads moves the progress bar)
        Ok(Opened::Compressed(open_tar(Window { meter, ..window }, budget)?))
    } else {
        Ok(Opened::Plain(tar::Reader::new(Window { meter, ..window }), InFile { file, base: offset }))
    }
}

/// Reads the layer of `size` bytes at `offset` of `file` in full.
fn read_layer(
    file: &std::fs::File,
    offset: u64,
    size: u64,
    meter: Option<&Meter>,
    budget: &Budget,
) -> Result<Layer, String> {
    match open_at(file, offset, size, meter, budget)? {
        Opened::Plain(mut tar, at) => read_entries(&mut tar, Some(at)),
        Opened::Compressed(mut tar) => read_entries(&mut tar, None),
    }
}

/// Reads a layer that is only a stream (inside a compressed archive) in full.
fn read_layer_stream(r: impl Read, budget: &Budget) -> Result<Layer, String> {
    read_entries(&mut open_tar(r, budget)?, None)
}

/// Lists every entry of a layer and judges its files.
fn read_entries<R: Read + tar::Skip>(tar: &mut tar::Reader<R>, at: Option<InFile>) -> Result<Layer, String> {
    let mut layer = Layer::default();
    while let Some(h) = tar.next_entry().map_err(|e| e.to_string())? {
        let size = h.size;
        if let Some(path) = layer.list(h)? {
            let entry_at = at.map(|a| InFile { file: a.file, base: a.base + tar.position() });
            let found =
                read_file(&mut tar.data(), size, &path, entry_at, &mut layer.warnings).map_err(|e| e.to_string())?;
            layer.add_found(path, found);
        }
    }
    Ok(layer.settle())
}

/// The objects of one file of an image (`size` bytes from `r`, lying `at` a place in a file
/// when they do), judged as a file found in a directory is ([`super::judge`]); one that
/// cannot be read as an object is a warning, and the archive goes on.
fn read_file(
    r: &mut impl Read,
    size: u64,
    path: &str,
    at: Option<InFile>,
    warnings: &mut Vec<String>,
) -> io::Result<Inputs> {
    let head = host::read_head(r, host::HEAD_LEN)?;
    // (the sources name the file inside the image; `load` says which image)
    match super::judge(path, Some(Path::new(path)), &head, || Ok(size), r, at, false, warnings) {
        Ok(objects) => Ok(objects),
        // (the archive's own bytes could not be read: the image's error)
        Err(InputError::Io { source, .. }) => Err(source),
        Err(e) => {
            warnings.push(format!("skipped: {e}"));
            Ok(Vec::new())
        }
    }
}

/// `/a/b/c` as (`/a/b`, `c`).
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((dir, base)) => (dir, base),
        None => ("/", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// The first up to `n` bytes of `r` (fewer only at its end), and `r` whole again.
fn peek<'r>(mut r: impl Read + 'r, n: usize) -> io::Result<(Vec<u8>, impl Read + 'r)> {
    let head = host::read_head(&mut r, n)?;
    Ok((head.clone(), io::Cursor::new(head).chain(r)))
}

/// A gzip or zstd stream decompressed, anything else as it is.
fn decompress<'r>(r: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
    let (head, r) = peek(r, ZSTD_MAGIC.len())?;
    let r = BufReader::new(r);
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}

/// Whether a stream whose first bytes are `head` is gzip or zstd.
fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(GZIP_MAGIC) || head.starts_with(ZSTD_MAGIC)
}

/// The bytes of an image's files read so far, on a progress bar (on a terminal only).
struct Meter {
    read: AtomicU64,
    progress: crate::progress::Progress,
}

impl Meter {
    fn new(total: u64) -> Meter {
        Meter { read: AtomicU64::new(0), progress: crate::progress::Progress::bytes("reading image", total) }
    }

    fn add(&self, n: usize) {
        let read = self.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        self.progress.set(usize::try_from(read).unwrap_or(usize::MAX));
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.progress.finish();
    }
}

/// What the decompressed streams of one image may give in all: [`MAX_EXPANSION`] times the
/// image's size, and at least [`MIN_EXPANSION_LIMIT`] (nested compression shares it: a gzip
/// inside a gzip cannot multiply it).
struct Budget {
    used: AtomicU64,
    limit: u64,
}

impl Budget {
    fn for_size(size: u64) -> Budget {
        Budget { used: AtomicU64::new(0), limit: size.saturating_mul(MAX_EXPANSION).max(MIN_EXPANSION_LIMIT) }
    }

    fn spend(&self, n: usize) -> io::Result<()> {
        let used = self.used.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if used > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it expands to more than {} bytes, over {MAX_EXPANSION} times its size (a decompression bomb?)",
                    self.limit
                ),
            ));
        }
        Ok(())
    }
}

/// A decompressed stream whose bytes are spent from its image's [`Budget`].
struct Bounded<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.spend(n)?;
        Ok(n)
    }
}

impl<R: Read> tar::Skip for Bounded<'_, R> {}

/// `pos..end` of a file, read by position: passing over bytes costs nothing. Counts what it
/// covers on `meter`.
#[derive(Clone, Copy)]
struct Window<'f> {
    file: &'f std::fs::File,
    pos: u64,
    end: u64,
    meter: Option<&'f Meter>,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min(usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        if let Some(m) = self.meter {
            m.add(n);
        }
        Ok(n)
    }
}

impl tar::Skip for Window<'_> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = n.min(self.end.saturating_sub(self.pos));
        self.pos += k;
        if let Some(m) = self.meter {
            m.add(usize::try_from(k).unwrap_or(usize::MAX));
        }
        Ok(k)
    }
}

// ---------------------------------------------------------------------------------------------
// Where the layers are: an OCI layout, an archive.

/// An OCI descriptor: what a manifest or an index points at (the fields bpfcap uses).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The annotation that names an image in a layout (its tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An index or a manifest (OCI or Docker's v2 schema 2): `manifests` for an index, `layers`
/// for a manifest.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// One image of a docker-archive's manifest.json.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    layers: Vec<String>,
}

/// The blob path of a digest (`sha256:HEX` → `blobs/sha256/HEX`); a digest that could name
/// another path is an error.
fn blob_path(digest: &str) -> Result<String, String> {
    let (alg, hex) = digest.split_once(':').ok_or_else(|| format!("digest {digest:?} is not ALGORITHM:HEX"))?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+' || b == b'.')
            && s != "."
            && s != ".."
    };
    if !ok(alg) || !ok(hex) {
        return Err(format!("digest {digest:?} is not ALGORITHM:HEX"));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

/// The layers (as blob paths, bottom first) of the manifest `index` leads to for `platform`,
/// reading JSON documents with `read_json(blob path)`.
fn choose_layers(
    index: &[u8],
    platform: Option<&Platform>,
    read_json: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Vec<String>, String> {
    let mut doc: Document = serde_json::from_slice(index).map_err(|e| format!("index.json: {e}"))?;
    for _ in 0..MAX_INDEX_DEPTH {
        if let Some(layers) = doc.layers {
            return layers.iter().map(|l| blob_path(&l.digest)).collect();
        }
        let manifests = doc.manifests.ok_or("an index without manifests or layers")?;
        let candidates: Vec<&Descriptor> = manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown" && p.architecture != "unknown"))
            .collect();
        let chosen = match (platform, &candidates[..]) {
            // one image that names no platform serves whichever is asked for
            (_, [one]) if one.platform.is_none() => Some(*one),
            (None, [one]) => Some(*one),
            (Some(want), _) => candidates.iter().find(|d| d.platform.as_ref().is_some_and(|p| want.serves(p))).copied(),
            (None, _) => {
                let host = Platform::host();
                candidates.iter().find(|d| d.platform.as_ref().is_some_and(|p| host.serves(p))).copied()
            }
        };
        let Some(chosen) = chosen else {
            if candidates.iter().all(|d| d.platform.is_none()) {
                let names: Vec<&str> = candidates
                    .iter()
                    .map(|d| d.annotations.get(REF_NAME).map_or("(unnamed)", String::as_str))
                    .collect();
                return Err(format!(
                    "it holds {} images ({}) and bpfcap reads one: copy it out with `skopeo copy oci:DIR:NAME oci:NEWDIR`",
                    candidates.len(),
                    names.join(", ")
                ));
            }
            let offered: Vec<String> =
                candidates.iter().filter_map(|d| d.platform.as_ref()).map(|p| p.to_string()).collect();
            let want = platform.cloned().unwrap_or_else(Platform::host);
            return Err(format!(
                "no image for {want} in it (it has: {}); choose one with --platform",
                if offered.is_empty() { "none with a platform".to_string() } else { offered.join(", ") }
            ));
        };
        let bytes = read_json(&blob_path(&chosen.digest)?)?;
        doc = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", chosen.digest))?;
    }
    Err(format!("indexes nested more than {MAX_INDEX_DEPTH} deep"))
}

/// The layers of an OCI layout directory, read in parallel.
fn layout_layers(dir: &Path, platform: Option<&Platform>) -> Result<Vec<Layer>, String> {
    let read_json = &mut |rel: &str| -> Result<Vec<u8>, String> {
        let p = dir.join(rel);
        let f = std::fs::File::open(&p).map_err(|e| format!("{rel}: {e}"))?;
        let mut v = Vec::new();
        f.take(MAX_JSON + 1).read_to_end(&mut v).map_err(|e| format!("{rel}: {e}"))?;
        if v.len() as u64 > MAX_JSON {
            return Err(format!("{rel} is larger than {MAX_JSON} bytes"));
        }
        Ok(v)
    };
    let index = read_json("index.json")?;
    let blobs = choose_layers(&index, platform, read_json)?;
    let total = blobs.iter().filter_map(|rel| std::fs::metadata(dir.join(rel)).ok()).map(|m| m.len()).sum();
    let meter = Meter::new(total);
    let budget = Budget::for_size(total);
    let layers = crate::workers::map(&blobs, |rel| {
        let p = dir.join(rel);
        let f = std::fs::File::open(&p).map_err(|e| format!("layer {rel}: {e}"))?;
        let size = f.metadata().map_err(|e| format!("layer {rel}: {e}"))?.len();
        read_layer(&f, 0, size, Some(&meter), &budget).map_err(|e| format!("layer {rel}: {e}"))
    });
    layers.into_iter().collect()
}

/// A layer of an archive: read while the archive streamed by (a compressed archive), or where
/// it lies in the archive (a plain one: read afterwards, the layers in parallel).
#[derive(Clone)]
enum Nested {
    Read(Box<Result<Layer, String>>),
    At { offset: u64, size: u64 },
}

/// The layers of an archive: a docker-archive (its manifest.json), an OCI archive (its
/// index.json), or else the archive itself as the one layer of a root filesystem. One pass
/// reads the archive's documents and judges its files; an entry that is itself a tar stream
/// is a layer, read as it streams by when the archive is compressed, else afterwards from its
/// place in the archive, in parallel with the others. The documents say which layers the
/// image is made of.
fn archive_layers(path: &Path, platform: Option<&Platform>) -> Result<Vec<Layer>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let meter = Meter::new(size);
    let budget = Budget::for_size(size);
    let (rootfs, nested, json) = match open_at(&f, 0, size, Some(&meter), &budget)? {
        Opened::Plain(mut tar, _) => archive_entries(&mut tar, Some(&f), &budget)?,
        Opened::Compressed(mut tar) => archive_entries(&mut tar, None, &budget)?,
    };
    drop(meter);
    let layers: Vec<String> = if let Some(manifest) = json.get("/manifest.json") {
        let images: Vec<DockerImage> = serde_json::from_slice(manifest).map_err(|e| format!("manifest.json: {e}"))?;
        let [image] = &images[..] else {
            return Err(format!(
                "a docker-archive of {} images; bpfcap reads one (take it out with `skopeo copy docker-archive:FILE:TAG oci:DIR`)",
                images.len()
            ));
        };
        image.layers.iter().map(|l| tar::normalize(l)).collect::<Result<_, _>>()?
    } else if let Some(index) = json.get("/index.json") {
        let blobs = choose_layers(index, platform, &mut |rel| {
            json.get(&format!("/{rel}"))
                .cloned()
                .ok_or_else(|| format!("{rel} is not in the archive (or larger than {MAX_JSON} bytes)"))
        })?;
        blobs.into_iter().map(|b| format!("/{b}")).collect()
    } else {
        return Ok(vec![rootfs]);
    };
    // (a manifest may list one layer twice: identical layers are stored once; a layer already
    // read is taken at its last listing, copied only for the ones before)
    let mut listings: BTreeMap<&String, usize> = BTreeMap::new();
    for p in &layers {
        *listings.entry(p).or_default() += 1;
    }
    let mut nested = nested;
    let mut found: Vec<(&String, Nested)> = Vec::with_capacity(layers.len());
    for p in &layers {
        let left = listings.get_mut(p).expect("counted above");
        *left -= 1;
        let n = if *left == 0 { nested.remove(p) } else { nested.get(p).cloned() };
        found.push((p, n.ok_or_else(|| format!("layer {p} is not in the archive"))?));
    }
    let total = found.iter().map(|(_, n)| if let Nested::At { size, .. } = n { *size } else { 0 }).sum();
    let meter = Meter::new(total);
    let read = crate::workers::map_owned(found, |(p, n)| {
        let layer = match n {
            Nested::Read(l) => *l,
            Nested::At { offset, size } => read_layer(&f, offset, size, Some(&meter), &budget),
        };
        layer.map_err(|e| format!("layer {p}: {e}"))
    });
    read.into_iter().collect()
}

/// What one pass over an archive finds: the archive as a root filesystem, its entries that
/// are tar streams (layers, maybe), and its JSON documents.
type ArchiveEntries = (Layer, BTreeMap<String, Nested>, BTreeMap<String, Vec<u8>>);

/// One pass over an archive (`in_file`: the archive's file, when it is plain and read by
/// position).
fn archive_entries<R: Read + tar::Skip>(
    tar: &mut tar::Reader<R>,
    in_file: Option<&std::fs::File>,
    budget: &Budget,
) -> Result<ArchiveEntries, String> {
    let mut rootfs = Layer::default();
    let mut nested: BTreeMap<String, Nested> = BTreeMap::new();
    let mut json: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut json_bytes = 0;
    while let Some(h) = tar.next_entry().map_err(|e| e.to_string())? {
        let size = h.size;
        let Some(path) = rootfs.list(h)? else { continue };
        let (dir, base) = split(&path);
        let offset = tar.position();
        let (head, mut data) = peek(tar.data(), HEAD_LEN).map_err(|e| e.to_string())?;
        let top_level_document = dir == "/" && matches!(base, "manifest.json" | "index.json" | "oci-layout");
        if top_level_document && size > MAX_JSON {
            return Err(format!("{path} is larger than {MAX_JSON} bytes"));
        }
        // where the image formats keep layers: docker-archive (`ID/layer.tar`, skopeo's
        // `DIGEST.tar`), OCI and Docker 25+ (`blobs/ALG/DIGEST`)
        let layer_place =
            path.starts_with("/blobs/") || path.ends_with("/layer.tar") || (dir == "/" && base.ends_with(".tar"));
        if top_level_document || (path.starts_with("/blobs/") && head.first() == Some(&b'{') && size <= MAX_JSON) {
            json_bytes += size;
            if json_bytes > MAX_JSON_TOTAL {
                return Err(format!("more than {MAX_JSON_TOTAL} bytes of JSON documents"));
            }
            let mut v = Vec::new();
            data.read_to_end(&mut v).map_err(|e| e.to_string())?;
            json.insert(path, v);
        } else if layer_place && is_archive(&head) {
            let layer = match in_file {
                Some(_) => Nested::At { offset, size },
                // (the archive's own bytes move the progress bar)
                None => Nested::Read(Box::new(read_layer_stream(data, budget))),
            };
            nested.insert(path, layer);
        } else {
            let at = in_file.map(|file| InFile { file, base: offset });
            let found = read_file(&mut data, size, &path, at, &mut rootfs.warnings).map_err(|e| e.to_string())?;
            rootfs.add_found(path, found);
        }
    }
    Ok((rootfs.settle(), nested, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, bool)], whiteouts: &[&str], opaque: &[&str], found: &[&str]) -> Layer {
        let xdp = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/xdp.bpf.o")).expect("testdata");
        let object = || crate::elf::read_object(&xdp, "xdp").expect("testdata/xdp.bpf.o reads");
        Layer {
            entries: entries.iter().map(|(p, d)| (p.to_string(), *d)).collect(),
            whiteouts: whiteouts.iter().map(|s| s.to_string()).collect(),
            opaque: opaque.iter().map(|s| s.to_string()).collect(),
            found: found.iter().map(|p| (p.to_string(), vec![(format!("{p}#x"), object())])).collect(),
            ..Layer::default()
        }
    }

    fn paths(m: &Merged) -> Vec<&str> {
        m.files.keys().map(String::as_str).collect()
    }

    #[test]
    fn upper_layers_delete_hide_and_replace() {
        let mut m = Merged::default();
        m.apply(layer(
            &[
                ("/a", false),
                ("/d", true),
                ("/d/b", false),
                ("/e", true),
                ("/e/c", false),
                ("/f", false),
                ("/g", true),
                ("/g/h", false),
            ],
            &[],
            &[],
            &["/a", "/d/b", "/e/c", "/f", "/g/h"],
        ));
        assert_eq!(paths(&m), ["/a", "/d/b", "/e/c", "/f", "/g/h"]);
        // /a deleted, /d hidden, /e/c replaced by a file without objects, /g made a file
        m.apply(layer(&[("/d", true), ("/e/c", false), ("/g", false)], &["/a"], &["/d"], &[]));
        assert_eq!(paths(&m), ["/f"]);
        // a whiteout of a directory takes what is below it; the same layer's files stay
        let mut m = Merged::default();
        m.apply(layer(&[("/x/y", false)], &[], &[], &["/x/y"]));
        m.apply(layer(&[("/x/z", false)], &["/x"], &[], &["/x/z"]));
        assert_eq!(paths(&m), ["/x/z"]);
    }

    #[test]
    fn symbolic_links_lead_to_files_inside_the_image() {
        let mut m = Merged::default();
        let mut l = layer(&[("/usr/bin/app", false)], &[], &[], &["/usr/bin/app"]);
        l.symlinks = [
            ("/usr/bin/rel", "app"),
            ("/usr/sbin/abs", "/usr/bin/app"),
            ("/usr/sbin/up", "../bin/rel"),
            ("/a", "b"),
            ("/b", "a"),
            ("/out", "../../../usr/bin/app"),
            ("/dangling", "/nowhere"),
        ]
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
        m.apply(l);
        let objects: Vec<String> = m.objects().0.into_iter().map(|(d, _)| d).collect();
        // a link that climbs above the root stays at it, as in the container
        assert_eq!(objects, ["/out#x", "/usr/bin/app#x", "/usr/bin/rel#x", "/usr/sbin/abs#x", "/usr/sbin/up#x"]);
        // an upper layer's entry at a link's path replaces the link
        let mut m = Merged::default();
        let mut l = layer(&[("/usr/bin/app", false)], &[], &[], &["/usr/bin/app"]);
        l.symlinks = vec![("/usr/bin/rel".into(), "app".into())];
        m.apply(l);
        m.apply(layer(&[("/usr/bin/rel", false)], &[], &[], &[]));
        assert_eq!(m.objects().0.len(), 1);
    }

    #[test]
    fn paths_listed_again_keep_their_last_entry_in_order() {
        let mut l = Layer::default();
        let header = |path: &str, kind| tar::Header { path: path.into(), kind, size: 0 };
        // every symbolic link listed twice, the second time to another target; a hard link
        // listed, then a directory at its path
        for round in ["first", "second"] {
            for i in 0..1000 {
                l.list(header(&format!("/l{i}"), EntryKind::Symlink(format!("{round}{i}")))).unwrap();
            }
        }
        l.list(header("/h", EntryKind::HardLink("/l0".into()))).unwrap();
        l.list(header("/h", EntryKind::Dir)).unwrap();
        let l = l.settle();
        let want: Vec<(String, String)> = (0..1000).map(|i| (format!("/l{i}"), format!("second{i}"))).collect();
        assert_eq!(l.symlinks, want);
        assert!(l.links.is_empty());
    }

    #[test]
    fn the_last_entry_at_a_path_in_a_layer_is_the_file() {
        let mut l = Layer::default();
        let header = |path: &str, kind| tar::Header { path: path.into(), kind, size: 0 };
        let path = l.list(header("./a.o", EntryKind::File)).unwrap().unwrap();
        l.add_found(path, layer(&[], &[], &[], &["/a.o"]).found.remove(0).1);
        assert_eq!(l.list(header("a.o", EntryKind::Symlink("b".into()))).unwrap(), None);
        let l = l.settle();
        assert!(l.found.is_empty(), "the symbolic link replaced the file");
        assert_eq!(l.symlinks, [("/a.o".to_string(), "b".to_string())]);
        let mut m = Merged::default();
        m.apply(l);
        assert!(m.objects().0.is_empty());
    }

    #[test]
    fn links_to_one_file_are_bounded() {
        let mut m = Merged::default();
        let mut l = layer(&[("/a.o", false)], &[], &[], &["/a.o"]);
        l.symlinks = (0..MAX_LINKS_PER_FILE + 5).map(|i| (format!("/l{i}"), "a.o".to_string())).collect();
        m.apply(l);
        let (objects, warnings) = m.objects();
        assert_eq!(objects.len(), 1 + MAX_LINKS_PER_FILE);
        assert!(
            warnings[0].contains(&format!("{MAX_LINKS_PER_FILE} of the {} links", MAX_LINKS_PER_FILE + 5)),
            "{warnings:?}"
        );
    }

    #[test]
    fn platforms() {
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err() && Platform::parse("linux//v8").is_err());
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.serves(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!Platform::parse("linux/arm64/v7").unwrap().serves(&Platform::parse("linux/arm64/v8").unwrap()));
    }

    /// A reader that gives one byte per read, as a decompressor may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn a_tar_is_known_however_its_bytes_arrive() {
        let mut tar = vec![0u8; 1024];
        tar[257..262].copy_from_slice(b"ustar");
        let (head, mut rest) = peek(Trickle(&tar), HEAD_LEN).unwrap();
        assert!(is_archive(&head));
        let mut all = Vec::new();
        rest.read_to_end(&mut all).unwrap();
        assert_eq!(all, tar, "nothing is lost by looking");
    }

    #[test]
    fn digests_name_blobs_only() {
        assert_eq!(blob_path("sha256:abc").unwrap(), "blobs/sha256/abc");
        assert!(
            blob_path("sha256:../../etc").is_err() && blob_path("abc").is_err() && blob_path("sha256:a/b").is_err()
        );
    }
}
