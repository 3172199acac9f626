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
//!   replaces (any entry at its path, or a non-directory at a directory above it) is gone; a
//!   hard link holds what its target holds, and so does a symbolic link to a file of the
//!   image (followed inside the image only, at most 40 links deep, as a directory walk reads
//!   a link to a file).
//! - With an index that lists several platforms, `--platform` chooses (the default: the
//!   running machine's). Attestation manifests (`unknown/unknown`) are never chosen.
//! - Objects are named by their path inside the image: `/usr/sbin/tool#name`.
//!
//! Hostile archives: a header that does not check out, a path that climbs out of the root, a
//! long name or pax record over its bound, a JSON document over [`MAX_JSON`], a layer that
//! expands more than [`MAX_EXPANSION`] times (at least [`MIN_EXPANSION_LIMIT`]) is an error
//! naming the image; memory is bounded by the largest file read (at most
//! [`super::embedded::MAX_SCAN_SIZE`]), and no link leads out of the image.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::tar::{self, EntryKind};
use super::{InputError, Inputs, embedded, host};

/// The largest JSON document (index, manifest, configuration) read from an image.
pub const MAX_JSON: u64 = 4 << 20;
/// A layer may expand at most this many times its compressed size...
pub const MAX_EXPANSION: u64 = 1000;
/// ...or to this many bytes, whichever is more (a small layer of zeros is no bomb).
pub const MIN_EXPANSION_LIMIT: u64 = 1 << 30;
/// How deep an index may point at further indexes.
const MAX_INDEX_DEPTH: usize = 4;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A platform, as OCI indexes name them (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
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
    head.starts_with(GZIP_MAGIC) || head.starts_with(ZSTD_MAGIC) || head.get(257..262) == Some(b"ustar")
}

/// How many bytes of a file [`is_archive`] needs.
pub const HEAD_LEN: usize = 512;

/// The objects of the image at `path` (an OCI layout directory or an archive), for `platform`.
pub fn load(path: &Path, display: &str, platform: Option<&Platform>) -> Result<(Inputs, Vec<String>), InputError> {
    let err = |why: String| InputError::Image { path: display.to_string(), why };
    let (layers, mut warnings) = if path.is_dir() {
        layout_layers(path, platform).map_err(err)?
    } else {
        archive_layers(path, platform).map_err(err)?
    };
    let mut merged = Merged::default();
    for layer in layers {
        warnings.extend(layer.warnings.iter().cloned());
        merged.apply(layer);
    }
    let mut objects = merged.objects();
    for (_, o) in &mut objects {
        if let Some(src) = o.source.as_mut() {
            src.image = Some(path.to_path_buf());
        }
    }
    Ok((objects, warnings))
}

/// What one layer holds, read once.
#[derive(Debug, Default)]
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
    warnings: Vec<String>,
}

/// The image's files that hold objects, and its symbolic links, as the layers applied so far
/// make them.
#[derive(Debug, Default)]
struct Merged {
    files: BTreeMap<String, Inputs>,
    symlinks: BTreeMap<String, String>,
}

/// How many symbolic links one path may go through (the kernel's limit, 40).
const MAX_LINK_HOPS: usize = 40;

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
            if let Some(objects) = self.files.get(&target) {
                let objects = renamed(objects, &target, &p);
                self.files.insert(p, objects);
            }
        }
        self.symlinks.extend(layer.symlinks);
    }

    /// The file a symbolic link leads to, when it leads to one that holds objects through
    /// links only (a directory link on the way is not followed, as a directory walk does not).
    fn resolve(&self, link: &str) -> Option<&str> {
        let mut path = link.to_string();
        for _ in 0..MAX_LINK_HOPS {
            let target = self.symlinks.get(&path)?;
            let joined = if target.starts_with('/') { target.clone() } else { join(split(&path).0, target) };
            path = tar::normalize(&joined).ok()?;
            if let Some((found, _)) = self.files.get_key_value(&path) {
                return Some(found);
            }
        }
        None
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
    /// link to one of them (as a directory walk reads a link to a file).
    fn objects(self) -> Inputs {
        let mut out: BTreeMap<&str, Inputs> = self.files.iter().map(|(p, o)| (p.as_str(), o.clone())).collect();
        for link in self.symlinks.keys() {
            if let Some(file) = self.resolve(link) {
                out.insert(link, renamed(&self.files[file], file, link));
            }
        }
        out.into_values().flatten().collect()
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
        self.entries.push((path.clone(), h.kind == EntryKind::Dir));
        match h.kind {
            EntryKind::File => return Ok(Some(path)),
            EntryKind::HardLink(target) => self.links.push((path, tar::normalize(&target)?)),
            EntryKind::Symlink(target) => self.symlinks.push((path, target)),
            EntryKind::Dir | EntryKind::Other => {}
        }
        Ok(None)
    }
}

/// The entries of a compressed layer or archive, as [`open_tar`] opens them.
type LayerStream<'r> = tar::Reader<Bounded<Box<dyn Read + 'r>>>;

/// A tar stream, decompressed if it is gzip or zstd (and whether it was), that fails past
/// the expansion limit of `compressed_size` bytes, counting what it reads on `meter`.
fn open_tar<'r>(
    r: impl Read + 'r,
    compressed_size: u64,
    meter: Option<&'r Meter>,
) -> Result<(LayerStream<'r>, bool), String> {
    let counted = Counted::new(r, meter);
    let bytes_in = counted.count.clone();
    let limit = compressed_size.saturating_mul(MAX_EXPANSION).max(MIN_EXPANSION_LIMIT);
    let (inner, compressed) = decompress(counted).map_err(|e| e.to_string())?;
    Ok((tar::Reader::new(Bounded { inner, read: 0, limit, bytes_in }), compressed))
}

/// Where a tar stream's bytes lie in a file, when they do (a plain archive or layer): what is
/// passed over is then not read, and an executable's sections are read where they lie.
#[derive(Debug, Clone, Copy)]
struct InFile<'f> {
    file: &'f std::fs::File,
    /// The byte of the file where the stream (or the entry) starts.
    base: u64,
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
) -> Result<Opened<'f>, String> {
    let window = Window { file, pos: offset, end: offset.saturating_add(size), meter };
    let (head, _) = peek(Window { meter: None, ..window }, ZSTD_MAGIC.len()).map_err(|e| e.to_string())?;
    if head.starts_with(GZIP_MAGIC) || head.starts_with(ZSTD_MAGIC) {
        Ok(Opened::Compressed(open_tar(window, size, meter)?.0))
    } else {
        Ok(Opened::Plain(tar::Reader::new(window), InFile { file, base: offset }))
    }
}

/// Reads the layer of `size` bytes at `offset` of `file` in full.
fn read_layer(file: &std::fs::File, offset: u64, size: u64, meter: Option<&Meter>) -> Result<Layer, String> {
    match open_at(file, offset, size, meter)? {
        Opened::Plain(mut tar, at) => read_entries(&mut tar, Some(at)),
        Opened::Compressed(mut tar) => read_entries(&mut tar, None),
    }
}

/// Reads a layer that is only a stream (inside a compressed archive) in full.
fn read_layer_stream(r: impl Read, compressed_size: u64) -> Result<Layer, String> {
    read_entries(&mut open_tar(r, compressed_size, None)?.0, None)
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
            if !found.is_empty() {
                layer.found.push((path, found));
            }
        }
    }
    Ok(layer)
}

/// The objects of one file of an image (`size` bytes from `r`, lying `at` a place in a file
/// when they do), judged as a file found in a directory is.
fn read_file(
    r: &mut impl Read,
    size: u64,
    path: &str,
    at: Option<InFile>,
    warnings: &mut Vec<String>,
) -> io::Result<Inputs> {
    // (the sources name the file inside the image; `load` says which image)
    let file = Some(Path::new(path));
    let head = host::read_head(r)?;
    let kind = host::Kind::of(&head);
    if kind == host::Kind::Other {
        return Ok(Vec::new());
    }
    if size > embedded::MAX_SCAN_SIZE {
        warnings.push(format!(
            "{path}: skipped, larger than {} bytes (not scanned for BPF objects)",
            embedded::MAX_SCAN_SIZE
        ));
        return Ok(Vec::new());
    }
    let skipped = |e: InputError, warnings: &mut Vec<String>| {
        warnings.push(format!("skipped: {e}"));
        Vec::new()
    };
    let why = match (kind, at) {
        (host::Kind::Elf, Some(at)) => match host::read_sections(at.file, at.base, size, super::carriers()) {
            Ok(parts) => {
                let loaded = super::load_embedded(path, file, &parts.view(), false, warnings);
                return Ok(loaded.unwrap_or_else(|e| skipped(e, warnings)));
            }
            Err(why) => Some(why),
        },
        _ => None,
    };
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&head);
    r.read_to_end(&mut bytes)?;
    let loaded = match (kind, why) {
        (host::Kind::Elf, None) => match host::view_sections(&bytes, super::carriers()) {
            Ok(view) => super::load_embedded(path, file, &view, false, warnings),
            Err(why) => {
                warnings
                    .push(format!("{path}: its section headers cannot be read ({why}); the whole file was searched"));
                super::load_whole(path, file, &bytes, false, warnings)
            }
        },
        (_, Some(why)) => {
            warnings.push(format!("{path}: its section headers cannot be read ({why}); the whole file was searched"));
            super::load_whole(path, file, &bytes, false, warnings)
        }
        _ => super::load_whole(path, file, &bytes, false, warnings),
    };
    Ok(loaded.unwrap_or_else(|e| skipped(e, warnings)))
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
    let mut head = Vec::with_capacity(n);
    (&mut r).take(n as u64).read_to_end(&mut head)?;
    Ok((head.clone(), io::Cursor::new(head).chain(r)))
}

/// A gzip or zstd stream decompressed, anything else as it is; and whether it was compressed.
fn decompress<'r>(r: impl Read + 'r) -> io::Result<(Box<dyn Read + 'r>, bool)> {
    let (head, r) = peek(r, ZSTD_MAGIC.len())?;
    let r = BufReader::new(r);
    Ok(if head.starts_with(GZIP_MAGIC) {
        (Box::new(flate2::bufread::MultiGzDecoder::new(r)), true)
    } else if head.starts_with(ZSTD_MAGIC) {
        (Box::new(zstd::stream::read::Decoder::with_buffer(r)?), true)
    } else {
        (Box::new(r), false)
    })
}

/// Counts the bytes read through it, for its stream and for the image's progress.
struct Counted<'m, R> {
    inner: R,
    count: Arc<AtomicU64>,
    meter: Option<&'m Meter>,
}

impl<'m, R> Counted<'m, R> {
    fn new(inner: R, meter: Option<&'m Meter>) -> Self {
        Counted { inner, count: Arc::new(AtomicU64::new(0)), meter }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(m) = self.meter {
            m.add(n);
        }
        Ok(n)
    }
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

/// A decompressed stream that fails once it has given more than `limit` bytes, or more than
/// [`MAX_EXPANSION`] times what it has read (and at least [`MIN_EXPANSION_LIMIT`]).
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
    bytes_in: Arc<AtomicU64>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let ratio_limit = self.bytes_in.load(Ordering::Relaxed).saturating_mul(MAX_EXPANSION).max(MIN_EXPANSION_LIMIT);
        if self.read > self.limit.max(ratio_limit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a layer expands to more than {} bytes, over {MAX_EXPANSION} times its compressed size (a decompression bomb?)",
                    self.read - n as u64
                ),
            ));
        }
        Ok(n)
    }
}

impl<R: Read> tar::Skip for Bounded<R> {}

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
    platform: Option<DescriptorPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The annotation that names an image in a layout (its tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, serde::Deserialize)]
struct DescriptorPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

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
        let listed = |d: &Descriptor| {
            d.platform.as_ref().map(|p| Platform {
                os: p.os.clone(),
                architecture: p.architecture.clone(),
                variant: p.variant.clone(),
            })
        };
        let chosen = match platform {
            Some(want) => candidates.iter().find(|d| listed(d).is_some_and(|p| want.serves(&p))).copied(),
            None if candidates.len() == 1 => Some(candidates[0]),
            None => candidates.iter().find(|d| listed(d).is_some_and(|p| Platform::host().serves(&p))).copied(),
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
            let offered: Vec<String> = candidates.iter().filter_map(|d| listed(d)).map(|p| p.to_string()).collect();
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
fn layout_layers(dir: &Path, platform: Option<&Platform>) -> Result<(Vec<Layer>, Vec<String>), String> {
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
    let layers = crate::workers::map(&blobs, |rel| {
        let p = dir.join(rel);
        let f = std::fs::File::open(&p).map_err(|e| format!("layer {rel}: {e}"))?;
        let size = f.metadata().map_err(|e| format!("layer {rel}: {e}"))?.len();
        read_layer(&f, 0, size, Some(&meter)).map_err(|e| format!("layer {rel}: {e}"))
    });
    Ok((layers.into_iter().collect::<Result<_, _>>()?, Vec::new()))
}

/// A layer of an archive: read while the archive streamed by (a compressed archive), or where
/// it lies in the archive (a plain one: read afterwards, the layers in parallel).
enum Nested {
    Read(Result<Layer, String>),
    At { offset: u64, size: u64 },
}

/// The layers of an archive: a docker-archive (its manifest.json), an OCI archive (its
/// index.json), or else the archive itself as the one layer of a root filesystem. One pass
/// reads the archive's documents and judges its files; an entry that is itself a tar stream
/// is a layer, read as it streams by when the archive is compressed, else afterwards from its
/// place in the archive, in parallel with the others. The documents say which layers the
/// image is made of.
fn archive_layers(path: &Path, platform: Option<&Platform>) -> Result<(Vec<Layer>, Vec<String>), String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let meter = Meter::new(size);
    let (rootfs, mut nested, json) = match open_at(&f, 0, size, Some(&meter))? {
        Opened::Plain(mut tar, _) => archive_entries(&mut tar, Some(&f))?,
        Opened::Compressed(mut tar) => archive_entries(&mut tar, None)?,
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
        return Ok((vec![rootfs], Vec::new()));
    };
    let mut found: Vec<Nested> = Vec::with_capacity(layers.len());
    for p in &layers {
        found.push(nested.remove(p).ok_or_else(|| format!("layer {p} is not in the archive, or was listed twice"))?);
    }
    let total = found.iter().map(|n| if let Nested::At { size, .. } = n { *size } else { 0 }).sum();
    let meter = Meter::new(total);
    let read = crate::workers::map(&found, |n| match n {
        Nested::Read(_) => None,
        Nested::At { offset, size } => Some(read_layer(&f, *offset, *size, Some(&meter))),
    });
    layers
        .iter()
        .zip(found)
        .zip(read)
        .map(|((p, n), r)| match (n, r) {
            (Nested::Read(l), _) | (_, Some(l)) => l.map_err(|e| format!("layer {p}: {e}")),
            (Nested::At { .. }, None) => unreachable!("read above"),
        })
        .collect::<Result<_, _>>()
        .map(|layers| (layers, Vec::new()))
}

/// What one pass over an archive finds: the archive as a root filesystem, its entries that
/// are tar streams (layers, maybe), and its JSON documents.
type ArchiveEntries = (Layer, BTreeMap<String, Nested>, BTreeMap<String, Vec<u8>>);

/// One pass over an archive (`in_file`: the archive's file, when it is plain and read by
/// position).
fn archive_entries<R: Read + tar::Skip>(
    tar: &mut tar::Reader<R>,
    in_file: Option<&std::fs::File>,
) -> Result<ArchiveEntries, String> {
    let mut rootfs = Layer::default();
    let mut nested: BTreeMap<String, Nested> = BTreeMap::new();
    let mut json: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    while let Some(h) = tar.next_entry().map_err(|e| e.to_string())? {
        let size = h.size;
        let Some(path) = rootfs.list(h)? else { continue };
        let (dir, base) = split(&path);
        let offset = tar.position();
        let (head, mut data) = peek(tar.data(), HEAD_LEN).map_err(|e| e.to_string())?;
        let top_level_document = dir == "/" && matches!(base, "manifest.json" | "index.json" | "oci-layout");
        if (top_level_document || (path.starts_with("/blobs/") && head.first() == Some(&b'{'))) && size <= MAX_JSON {
            let mut v = Vec::new();
            data.read_to_end(&mut v).map_err(|e| e.to_string())?;
            json.insert(path, v);
        } else if is_archive(&head) {
            let layer = match in_file {
                Some(_) => Nested::At { offset, size },
                // (the archive's own bytes move the progress bar)
                None => Nested::Read(read_layer_stream(data, size)),
            };
            nested.insert(path, layer);
        } else {
            let at = in_file.map(|file| InFile { file, base: offset });
            let found = read_file(&mut data, size, &path, at, &mut rootfs.warnings).map_err(|e| e.to_string())?;
            if !found.is_empty() {
                rootfs.found.push((path, found));
            }
        }
    }
    Ok((rootfs, nested, json))
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
            links: Vec::new(),
            symlinks: Vec::new(),
            warnings: Vec::new(),
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
