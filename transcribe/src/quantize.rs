//! Quantised Whisper models: rewrites an f16 (or f32) whisper.cpp ggml model with its large
//! weight matrices in one of ggml's block formats (q8_0, q5_1, q5_0, q4_0), the way whisper.cpp's
//! own `examples/quantize` does, so that the GPU worker can run a smaller, faster model.
//!
//! The file format is the one `whisper_model_load` reads: the magic, 11 hyper-parameters (the
//! last one the ftype), the mel filters, the vocabulary, then tensors to the end of the file,
//! each `n_dims, name_len, type, ne[n_dims], name, data`. The quantisation itself is ggml's
//! (`ggml_quantize_chunk`, linked in with whisper.cpp), never a re-implementation of the block
//! formats, so the result is what whisper.cpp expects bit for bit.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use whisper_rs::whisper_rs_sys as sys;

/// ggml model files start with 0x67676d6c ("ggml" as a little-endian u32).
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// whisper.cpp stores `ftype + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR` in the header of a
/// quantised model (and reads the ftype back modulo the factor).
const QNT_VERSION_FTYPE_OFFSET: i32 = (sys::GGML_QNT_VERSION * sys::GGML_QNT_VERSION_FACTOR) as i32;

/// Tensors whisper.cpp creates as F32/F16 whatever the model's weight type is, so they must
/// stay as they are (the same list as whisper.cpp's `examples/quantize`). All other 2-D tensors
/// are created with the weight type and must be quantised.
pub const KEEP_AS_IS: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// Bounds that no real model comes near; they turn a corrupt length into a clear error instead
/// of a huge allocation.
const MAX_FILTER_VALUES: i64 = 16 << 20;
const MAX_VOCAB: i32 = 1 << 20;
const MAX_TOKEN_BYTES: u32 = 1 << 16;
const MAX_NAME_BYTES: i32 = 1 << 10;

/// The block formats a model can be quantised to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    Q8_0,
    Q5_1,
    Q5_0,
    Q4_0,
}

impl QuantType {
    pub const ALL: [QuantType; 4] = [Self::Q8_0, Self::Q5_1, Self::Q5_0, Self::Q4_0];

    /// The name whisper.cpp and ggml use ("q8_0", ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q5_1 => "q5_1",
            Self::Q5_0 => "q5_0",
            Self::Q4_0 => "q4_0",
        }
    }

    /// The ggml tensor type of the quantised weights.
    pub fn ggml_type(self) -> sys::ggml_type {
        match self {
            Self::Q8_0 => sys::ggml_type_GGML_TYPE_Q8_0,
            Self::Q5_1 => sys::ggml_type_GGML_TYPE_Q5_1,
            Self::Q5_0 => sys::ggml_type_GGML_TYPE_Q5_0,
            Self::Q4_0 => sys::ggml_type_GGML_TYPE_Q4_0,
        }
    }

    /// The model file type ("mostly q8_0", ...), from which whisper.cpp derives the type it
    /// expects for every weight matrix.
    pub fn ggml_ftype(self) -> sys::ggml_ftype {
        match self {
            Self::Q8_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0,
            Self::Q5_1 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1,
            Self::Q5_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_0,
            Self::Q4_0 => sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q4_0,
        }
    }

    /// The ftype value written to the header of the quantised file.
    pub fn header_ftype(self) -> i32 {
        self.ggml_ftype() + QNT_VERSION_FTYPE_OFFSET
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|q| q.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown quantisation type {s:?} (expected one of {})",
                    Self::ALL.map(QuantType::name).join(", ")
                )
            })
    }
}

/// The header's hyper-parameters, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HParams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// As stored: a ggml ftype, plus 1000 × the quantisation version for quantised models.
    pub ftype: i32,
}

impl HParams {
    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(a: [i32; 11]) -> Self {
        Self {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }
}

/// One tensor of a model file: where its data lies and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    pub name: String,
    pub ggml_type: sys::ggml_type,
    /// `ne`, innermost dimension first, as in the file.
    pub shape: Vec<i64>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: u64,
    pub data_len: u64,
}

impl TensorEntry {
    pub fn elements(&self) -> i64 {
        self.shape.iter().product()
    }

    /// Rows of `shape[0]` elements.
    pub fn rows(&self) -> i64 {
        self.shape[1..].iter().product()
    }
}

/// What a model file holds: its hyper-parameters, the length of everything before the tensors
/// (magic, hyper-parameters, mel filters, vocabulary), and its tensors in file order.
#[derive(Debug, Clone)]
pub struct ModelIndex {
    pub hparams: HParams,
    pub preamble_len: u64,
    pub tensors: Vec<TensorEntry>,
    pub file_len: u64,
}

/// What [`quantize_model`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantReport {
    pub kind: QuantType,
    /// Tensors rewritten in the block format, and how many weights they hold.
    pub tensors_quantised: usize,
    pub weights_quantised: u64,
    /// Tensors copied unchanged (1-D, 3-D, and [`KEEP_AS_IS`]).
    pub tensors_kept: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl fmt::Display for QuantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} tensors quantised ({} weights), {} kept; {} bytes -> {} bytes ({:.1} %)",
            self.kind,
            self.tensors_quantised,
            self.weights_quantised,
            self.tensors_kept,
            self.bytes_in,
            self.bytes_out,
            100.0 * self.bytes_out as f64 / self.bytes_in.max(1) as f64
        )
    }
}

/// ggml's name for a tensor type ("f16", "q8_0", ...).
pub fn type_name(ggml_type: sys::ggml_type) -> String {
    if ggml_type >= sys::ggml_type_GGML_TYPE_COUNT {
        return format!("type {ggml_type}");
    }
    // SAFETY: ggml_type_name returns a static C string for every type below GGML_TYPE_COUNT.
    unsafe { std::ffi::CStr::from_ptr(sys::ggml_type_name(ggml_type)) }
        .to_string_lossy()
        .into_owned()
}

/// Bytes of one row of `n` elements of `ggml_type`, or an error for a type ggml does not know
/// (or no longer supports) or a row that is not a whole number of blocks.
fn row_bytes(ggml_type: sys::ggml_type, n: i64) -> Result<u64, String> {
    if ggml_type >= sys::ggml_type_GGML_TYPE_COUNT {
        return Err(format!("unknown tensor type {ggml_type}"));
    }
    // SAFETY: the type is in range; ggml's traits table is static.
    let block = unsafe { sys::ggml_blck_size(ggml_type) };
    if block <= 0 {
        return Err(format!("unsupported tensor type {ggml_type}"));
    }
    if n % block != 0 {
        return Err(format!(
            "rows of {n} are not whole {} blocks of {block}",
            type_name(ggml_type)
        ));
    }
    // SAFETY: as above; n is a multiple of the block size.
    Ok(unsafe { sys::ggml_row_size(ggml_type, n) } as u64)
}

/// Converts `count` values of `ggml_type` in `data` to f32 with ggml's own `to_float`.
pub fn to_f32(ggml_type: sys::ggml_type, data: &[u8], count: usize) -> Result<Vec<f32>, String> {
    let expected = row_bytes(ggml_type, count as i64)?;
    if data.len() as u64 != expected {
        return Err(format!(
            "{} bytes for {count} {} values, expected {expected}",
            data.len(),
            type_name(ggml_type)
        ));
    }
    if ggml_type == sys::ggml_type_GGML_TYPE_F32 {
        return Ok(data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect());
    }
    // SAFETY: the type is in range (checked by row_bytes); the table is static.
    let traits = unsafe { &*sys::ggml_get_type_traits(ggml_type) };
    let to_float = traits
        .to_float
        .ok_or_else(|| format!("ggml cannot convert {} to f32", type_name(ggml_type)))?;
    let mut out = vec![0f32; count];
    // SAFETY: `data` holds exactly `count` values of the type (checked above), `out` has room
    // for `count` floats.
    unsafe { to_float(data.as_ptr().cast(), out.as_mut_ptr(), count as i64) };
    Ok(out)
}

/// Quantises `rows` rows of `n_per_row` floats to `kind` with ggml, on all CPUs (each thread
/// quantises whole rows into its own part of the output).
fn quantize_rows(
    kind: QuantType,
    src: &[f32],
    rows: i64,
    n_per_row: i64,
) -> Result<Vec<u8>, String> {
    let qtype = kind.ggml_type();
    let row_len = row_bytes(qtype, n_per_row)? as usize;
    let mut dst = vec![0u8; row_len * rows as usize];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(rows as usize)
        .max(1);
    let rows_per_thread = (rows as usize).div_ceil(threads);
    let written: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = dst
            .chunks_mut(rows_per_thread * row_len)
            .zip(src.chunks(rows_per_thread * n_per_row as usize))
            .map(|(out, input)| {
                scope.spawn(move || {
                    let nrows = (out.len() / row_len) as i64;
                    // SAFETY: `input` holds nrows × n_per_row floats and `out` exactly nrows
                    // rows of the quantised type; q8_0/q5_x/q4_0 need no importance matrix.
                    unsafe {
                        sys::ggml_quantize_chunk(
                            qtype,
                            input.as_ptr(),
                            out.as_mut_ptr().cast(),
                            0,
                            nrows,
                            n_per_row,
                            std::ptr::null(),
                        )
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("quantising thread panicked"))
            .sum()
    });
    if written != dst.len() {
        return Err(format!(
            "ggml wrote {written} bytes of {} for {rows} rows",
            dst.len()
        ));
    }
    Ok(dst)
}

/// A reader that knows how far it is into the file and how long the file is, so that every
/// length read from the file can be checked against what is left.
struct ModelReader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read> ModelReader<R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, String> {
        if n > self.len - self.pos {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {}, the file has {} left",
                self.pos,
                self.len - self.pos
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format!("cannot read {what} at offset {}: {e}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn at_end(&self) -> bool {
        self.pos == self.len
    }
}

/// Reads everything before the tensors, returning the hyper-parameters and the mel filters and
/// vocabulary as raw bytes (they are copied unchanged).
fn read_preamble<R: Read>(r: &mut ModelReader<R>) -> Result<(HParams, Vec<u8>), String> {
    if r.len < 4 {
        return Err("not a ggml model file (too short)".into());
    }
    let magic = r.bytes(4, "magic")?;
    if u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) != GGML_MAGIC {
        return Err("not a ggml model file (bad magic)".into());
    }
    let mut values = [0i32; 11];
    for v in &mut values {
        *v = r.i32("hyper-parameters")?;
    }
    let hparams = HParams::from_array(values);
    let sizes = values[..10].iter().all(|v| *v > 0);
    if !sizes {
        return Err(format!("not a Whisper model (hyper-parameters {values:?})"));
    }
    let mut rest = Vec::new();
    let n_mel = r.i32("mel filter count")?;
    let n_fft = r.i32("mel filter length")?;
    let values = i64::from(n_mel) * i64::from(n_fft);
    if n_mel <= 0 || n_fft <= 0 || values > MAX_FILTER_VALUES {
        return Err(format!(
            "not a Whisper model (mel filters {n_mel} × {n_fft})"
        ));
    }
    rest.extend_from_slice(&n_mel.to_le_bytes());
    rest.extend_from_slice(&n_fft.to_le_bytes());
    rest.extend(r.bytes(values as u64 * 4, "mel filters")?);
    let n_tokens = r.i32("vocabulary size")?;
    if !(0..=MAX_VOCAB).contains(&n_tokens) {
        return Err(format!("not a Whisper model (vocabulary of {n_tokens})"));
    }
    rest.extend_from_slice(&n_tokens.to_le_bytes());
    for _ in 0..n_tokens {
        let len = r.i32("token length")? as u32;
        if len > MAX_TOKEN_BYTES {
            return Err(format!("not a Whisper model (token of {len} bytes)"));
        }
        rest.extend_from_slice(&len.to_le_bytes());
        rest.extend(r.bytes(u64::from(len), "token")?);
    }
    Ok((hparams, rest))
}

/// Reads one tensor header; `None` at the end of the file.
fn read_tensor_header<R: Read>(r: &mut ModelReader<R>) -> Result<Option<TensorEntry>, String> {
    if r.at_end() {
        return Ok(None);
    }
    let n_dims = r.i32("tensor header")?;
    let name_len = r.i32("tensor header")?;
    let ggml_type = r.i32("tensor header")?;
    if !(1..=4).contains(&n_dims) || !(1..=MAX_NAME_BYTES).contains(&name_len) || ggml_type < 0 {
        return Err(format!(
            "bad tensor header at offset {} (dims {n_dims}, name length {name_len}, type {ggml_type})",
            r.pos - 12
        ));
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        let ne = r.i32("tensor shape")?;
        if ne <= 0 {
            return Err(format!("bad tensor shape at offset {} ({ne})", r.pos - 4));
        }
        shape.push(i64::from(ne));
    }
    let name = String::from_utf8(r.bytes(name_len as u64, "tensor name")?)
        .map_err(|_| format!("tensor name at offset {} is not UTF-8", r.pos))?;
    let ggml_type = ggml_type as sys::ggml_type;
    let rows: i64 = shape[1..].iter().product();
    let data_len = row_bytes(ggml_type, shape[0])
        .map_err(|e| format!("tensor {name}: {e}"))?
        .checked_mul(rows as u64)
        .ok_or_else(|| format!("tensor {name}: size overflows"))?;
    if data_len > r.len - r.pos {
        return Err(format!(
            "truncated: tensor {name} needs {data_len} bytes at offset {}, the file has {} left",
            r.pos,
            r.len - r.pos
        ));
    }
    Ok(Some(TensorEntry {
        name,
        ggml_type,
        shape,
        data_offset: r.pos,
        data_len,
    }))
}

fn open_model(path: &Path) -> Result<ModelReader<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read its size: {e}"))?
        .len();
    Ok(ModelReader {
        inner: BufReader::with_capacity(1 << 20, file),
        pos: 0,
        len,
    })
}

/// Reads a model file's structure (no tensor data), checking that every tensor lies within
/// the file.
pub fn read_model_index(path: &Path) -> Result<ModelIndex, String> {
    let named = |e: String| format!("{}: {e}", path.display());
    let mut r = open_model(path).map_err(named)?;
    let (hparams, _) = read_preamble(&mut r).map_err(named)?;
    let preamble_len = r.pos;
    let mut tensors = Vec::new();
    while let Some(t) = read_tensor_header(&mut r).map_err(named)? {
        r.inner
            .seek_relative(t.data_len as i64)
            .map_err(|e| named(format!("cannot skip tensor {}: {e}", t.name)))?;
        r.pos += t.data_len;
        tensors.push(t);
    }
    Ok(ModelIndex {
        hparams,
        preamble_len,
        tensors,
        file_len: r.len,
    })
}

/// Reads the data of one tensor of `path`.
pub fn read_tensor_data(path: &Path, tensor: &TensorEntry) -> Result<Vec<u8>, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    f.seek(SeekFrom::Start(tensor.data_offset))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut data = vec![0u8; tensor.data_len as usize];
    f.read_exact(&mut data)
        .map_err(|e| format!("{}: tensor {}: {e}", path.display(), tensor.name))?;
    Ok(data)
}

/// Whether whisper.cpp creates this tensor with the model's weight type (and so it must be
/// quantised): every 2-D tensor but [`KEEP_AS_IS`].
pub fn is_weight_matrix(name: &str, shape: &[i64]) -> bool {
    shape.len() == 2 && !KEEP_AS_IS.contains(&name)
}

/// The output file while it is being written: removed again unless the write completes.
struct PartialFile {
    path: PathBuf,
    done: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `input` (an f16 or f32 whisper.cpp model) to `output` with its weight matrices
/// quantised to `kind`. The file is written next to `output` and renamed into place when
/// complete, so a failure leaves no partial output (and an existing `output` untouched).
pub fn quantize_model(input: &Path, output: &Path, kind: QuantType) -> Result<QuantReport, String> {
    let in_err = |e: String| format!("{}: {e}", input.display());
    let out_err = |e: std::io::Error| format!("{}: cannot write: {e}", output.display());
    let mut r = open_model(input).map_err(in_err)?;
    let (mut hparams, rest) = read_preamble(&mut r).map_err(in_err)?;
    let source_ftype = hparams.ftype % sys::GGML_QNT_VERSION_FACTOR as i32;
    if source_ftype != sys::ggml_ftype_GGML_FTYPE_ALL_F32
        && source_ftype != sys::ggml_ftype_GGML_FTYPE_MOSTLY_F16
    {
        return Err(in_err(format!(
            "already quantised (ftype {}); quantise the f16 or f32 model",
            hparams.ftype
        )));
    }
    hparams.ftype = kind.header_ftype();

    let file_name = output
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", output.display()))?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut partial = PartialFile {
        path: dir.join(format!(
            ".{}.partial-{}",
            file_name.to_string_lossy(),
            std::process::id()
        )),
        done: false,
    };
    let file = File::create(&partial.path)
        .map_err(|e| format!("{}: cannot create: {e}", partial.path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&GGML_MAGIC.to_le_bytes()).map_err(out_err)?;
    for v in hparams.to_array() {
        w.write_all(&v.to_le_bytes()).map_err(out_err)?;
    }
    w.write_all(&rest).map_err(out_err)?;

    let mut report = QuantReport {
        kind,
        tensors_quantised: 0,
        weights_quantised: 0,
        tensors_kept: 0,
        bytes_in: r.len,
        bytes_out: 0,
    };
    while let Some(t) = read_tensor_header(&mut r).map_err(in_err)? {
        let data = r
            .bytes(t.data_len, &format!("tensor {}", t.name))
            .map_err(in_err)?;
        let quantise = is_weight_matrix(&t.name, &t.shape);
        let (out_type, out_data) = if quantise {
            if t.ggml_type != sys::ggml_type_GGML_TYPE_F16
                && t.ggml_type != sys::ggml_type_GGML_TYPE_F32
            {
                return Err(in_err(format!(
                    "tensor {} is {}; only f16 and f32 weights can be quantised",
                    t.name,
                    type_name(t.ggml_type)
                )));
            }
            let floats = to_f32(t.ggml_type, &data, t.elements() as usize)
                .map_err(|e| in_err(format!("tensor {}: {e}", t.name)))?;
            let q = quantize_rows(kind, &floats, t.rows(), t.shape[0])
                .map_err(|e| in_err(format!("tensor {}: {e}", t.name)))?;
            report.tensors_quantised += 1;
            report.weights_quantised += t.elements() as u64;
            (kind.ggml_type(), q)
        } else {
            report.tensors_kept += 1;
            (t.ggml_type, data)
        };
        w.write_all(&(t.shape.len() as i32).to_le_bytes())
            .map_err(out_err)?;
        w.write_all(&(t.name.len() as i32).to_le_bytes())
            .map_err(out_err)?;
        w.write_all(&(out_type as i32).to_le_bytes())
            .map_err(out_err)?;
        for ne in &t.shape {
            w.write_all(&(*ne as i32).to_le_bytes()).map_err(out_err)?;
        }
        w.write_all(t.name.as_bytes()).map_err(out_err)?;
        w.write_all(&out_data).map_err(out_err)?;
    }
    if report.tensors_quantised == 0 {
        return Err(in_err("no weight matrices to quantise".into()));
    }
    let file = w
        .into_inner()
        .map_err(|e| format!("{}: cannot write: {}", output.display(), e.error()))?;
    file.sync_all().map_err(out_err)?;
    report.bytes_out = file.metadata().map_err(out_err)?.len();
    drop(file);
    std::fs::rename(&partial.path, output)
        .map_err(|e| format!("{}: cannot rename into place: {e}", output.display()))?;
    partial.done = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::wer;

    /// The f16 base model the suite runs on (`./gt test` fetches it and sets the variable).
    fn base_model() -> PathBuf {
        let path = PathBuf::from(std::env::var("GT_WHISPER_MODEL").expect(
            "GT_WHISPER_MODEL is not set: run the suite with ./gt test, which fetches the model",
        ));
        assert!(path.is_file(), "{} does not exist", path.display());
        path
    }

    fn quantised(dir: &Path, kind: QuantType) -> (PathBuf, QuantReport) {
        let out = dir.join(format!("ggml-base-{kind}.bin"));
        let report = quantize_model(&base_model(), &out, kind).unwrap();
        println!("{report}");
        (out, report)
    }

    /// Bytes of a 32-weight block, from ggml's block definitions (ggml-common.h): q8_0 is an
    /// f16 scale and 32 i8; q5_1 an f16 scale and min, 4 bytes of fifth bits and 16 of nibbles.
    fn block_bytes(kind: QuantType) -> u64 {
        match kind {
            QuantType::Q8_0 => 2 + 32,
            QuantType::Q5_1 => 2 + 2 + 4 + 16,
            QuantType::Q5_0 => 2 + 4 + 16,
            QuantType::Q4_0 => 2 + 16,
        }
    }

    fn file_bytes(path: &Path, from: u64, to: u64) -> Vec<u8> {
        let mut f = File::open(path).unwrap();
        f.seek(SeekFrom::Start(from)).unwrap();
        let mut buf = vec![0u8; (to - from) as usize];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    /// Only whisper's weight matrices change type; everything else is copied byte for byte, and
    /// the quantised weights decode (with ggml's own dequantisation) to the f16 originals within
    /// the format's precision.
    #[test]
    fn quantised_models_keep_structure_and_weights() {
        let dir = tempfile::tempdir().unwrap();
        let base = base_model();
        let source = read_model_index(&base).unwrap();
        assert_eq!(source.hparams.ftype, 1, "the base model is f16");
        assert_eq!(
            source.file_len,
            std::fs::metadata(&base).unwrap().len(),
            "the index accounts for every byte"
        );
        for (kind, max_relative_rms) in [(QuantType::Q8_0, 0.01), (QuantType::Q5_1, 0.05)] {
            let (path, report) = quantised(dir.path(), kind);
            let q = read_model_index(&path).unwrap();
            // whisper.cpp's header convention: ggml ftype + 1000 × GGML_QNT_VERSION (2).
            let expected_ftype = match kind {
                QuantType::Q8_0 => 2007,
                QuantType::Q5_1 => 2009,
                _ => unreachable!(),
            };
            assert_eq!(q.hparams.ftype, expected_ftype);
            assert_eq!(
                HParams {
                    ftype: 1,
                    ..q.hparams
                },
                source.hparams
            );
            // Mel filters and vocabulary unchanged.
            assert_eq!(q.preamble_len, source.preamble_len);
            assert_eq!(
                file_bytes(&path, 48, q.preamble_len),
                file_bytes(&base, 48, source.preamble_len)
            );
            assert_eq!(q.file_len, report.bytes_out);
            assert_eq!(source.file_len, report.bytes_in);

            let names = |i: &ModelIndex| {
                i.tensors
                    .iter()
                    .map(|t| (t.name.clone(), t.shape.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&q), names(&source));
            let (mut quantised, mut kept, mut skipped_2d) = (0, 0, 0);
            for (s, t) in source.tensors.iter().zip(&q.tensors) {
                if is_weight_matrix(&s.name, &s.shape) {
                    quantised += 1;
                    assert_eq!(t.ggml_type, kind.ggml_type(), "{}", t.name);
                    assert_eq!(t.shape[0] % 32, 0);
                    assert_eq!(
                        t.data_len,
                        t.elements() as u64 / 32 * block_bytes(kind),
                        "{}",
                        t.name
                    );
                } else {
                    kept += 1;
                    skipped_2d += usize::from(s.shape.len() == 2);
                    assert_eq!(t.ggml_type, s.ggml_type, "{}", t.name);
                    assert_eq!(
                        file_bytes(&path, t.data_offset, t.data_offset + t.data_len),
                        file_bytes(&base, s.data_offset, s.data_offset + s.data_len),
                        "{} copied unchanged",
                        t.name
                    );
                }
            }
            assert_eq!(
                (quantised, kept),
                (report.tensors_quantised, report.tensors_kept)
            );
            // The base model: 6 + 6 layers of attention and MLP matrices plus the token
            // embedding, and the four 2-D tensors whisper.cpp keeps in f32.
            assert_eq!(quantised, 6 * 6 + 6 * 10 + 1);
            assert_eq!(skipped_2d, KEEP_AS_IS.len());

            for name in [
                "decoder.token_embedding.weight",
                "encoder.blocks.0.mlp.0.weight",
                "decoder.blocks.5.cross_attn.value.weight",
            ] {
                let s = source.tensors.iter().find(|t| t.name == name).unwrap();
                let t = q.tensors.iter().find(|t| t.name == name).unwrap();
                let n = s.elements() as usize;
                let original =
                    to_f32(s.ggml_type, &read_tensor_data(&base, s).unwrap(), n).unwrap();
                let decoded = to_f32(t.ggml_type, &read_tensor_data(&path, t).unwrap(), n).unwrap();
                let (mut err, mut norm) = (0f64, 0f64);
                for (a, b) in original.iter().zip(&decoded) {
                    err += f64::from(a - b).powi(2);
                    norm += f64::from(*a).powi(2);
                }
                let relative_rms = (err / norm).sqrt();
                println!(
                    "{kind} {name}: relative RMS error {:.4} %",
                    100.0 * relative_rms
                );
                assert!(
                    relative_rms < max_relative_rms,
                    "{kind} {name}: {relative_rms}"
                );
                // Really quantised: a copy would have no error at all.
                assert!(relative_rms > 0.0, "{kind} {name}");
            }
        }
    }

    /// 16 kHz mono 16-bit WAV samples as f32.
    fn read_wav(path: &Path) -> Vec<f32> {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WAVE");
        let mut at = 12;
        let mut format = None;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
            if id == b"fmt " {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            } else if id == b"data" {
                assert_eq!(format, Some((1, 1, 16_000, 16)), "{}", path.display());
                return body
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect();
            }
            at += 8 + len + (len & 1);
        }
        panic!("{}: no data chunk", path.display());
    }

    /// The LibriVox utterances (`./gt test` fetches them and sets `GT_VOICE_DIR`), one after
    /// the other with short pauses, and what is said in them.
    fn librivox_speech() -> (Vec<f32>, String) {
        let dir = PathBuf::from(std::env::var("GT_VOICE_DIR").expect(
            "GT_VOICE_DIR is not set: run the suite with ./gt test, which fetches the voice samples",
        ))
        .join("librivox");
        let mut wavs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect();
        wavs.sort();
        assert!(wavs.len() >= 3, "too few recordings in {}", dir.display());
        let (mut pcm, mut text) = (Vec::new(), String::new());
        for wav in wavs {
            pcm.extend(read_wav(&wav));
            pcm.extend(std::iter::repeat_n(0.0, 4_800));
            text.push_str(&std::fs::read_to_string(wav.with_extension("txt")).unwrap());
            text.push(' ');
        }
        // One decoding window: whisper.cpp then decodes all of it in one pass.
        assert!(pcm.len() < 30 * 16_000, "{} samples", pcm.len());
        (pcm, text)
    }

    /// whisper.cpp loads the quantised models as what they are and transcribes real recorded
    /// speech with them about as well as with the f16 model.
    #[test]
    fn quantised_models_load_and_transcribe_like_f16() {
        let dir = tempfile::tempdir().unwrap();
        let (pcm, reference) = librivox_speech();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let transcribe = |path: &Path| {
            let t = crate::Transcriber::new(path.to_path_buf());
            let ftype = t.model().unwrap().model_ftype();
            let text = t
                .transcribe(&pcm, "", Some("en"), threads, |_| {}, None)
                .unwrap()
                .text();
            (ftype, text)
        };
        let (f16_ftype, f16_text) = transcribe(&base_model());
        assert_eq!(f16_ftype, sys::ggml_ftype_GGML_FTYPE_MOSTLY_F16);
        let f16_wer = wer(&reference, &f16_text);
        println!("f16 WER {:.3}: {f16_text}", f16_wer);
        assert!(f16_wer < 0.1, "the f16 model itself: WER {f16_wer}");
        for (kind, margin) in [(QuantType::Q8_0, 0.03), (QuantType::Q5_1, 0.06)] {
            let (path, _) = quantised(dir.path(), kind);
            let (ftype, text) = transcribe(&path);
            // whisper.cpp read the header as "mostly <kind>" (and so expected every weight
            // matrix in that type, or it would have refused the file).
            assert_eq!(ftype, kind.ggml_ftype(), "{kind}");
            let kind_wer = wer(&reference, &text);
            println!("{kind} WER {kind_wer:.3}: {text}");
            assert!(
                kind_wer <= f16_wer + margin,
                "{kind}: WER {kind_wer} against {f16_wer} for f16"
            );
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Bad input is refused with an error that says what is wrong, and leaves no output (an
    /// existing output file untouched, no partial file behind).
    #[test]
    fn bad_input_is_refused_without_output() {
        let dir = tempfile::tempdir().unwrap();
        let base = base_model();
        let out = dir.path().join("out.bin");

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "this is not a model, just some text").unwrap();
        let e = quantize_model(&text, &out, QuantType::Q8_0).unwrap_err();
        assert!(
            e.contains("notes.txt") && e.contains("not a ggml model file"),
            "{e}"
        );
        assert!(!out.exists());

        // Cut inside the vocabulary, and inside the tensors.
        let len = std::fs::metadata(&base).unwrap().len();
        let source = read_model_index(&base).unwrap();
        for (cut, what) in [(200_000, "token"), (len / 2, "tensor"), (len - 1, "tensor")] {
            let truncated = dir.path().join("truncated.bin");
            let mut f = File::create(&truncated).unwrap();
            std::io::copy(&mut File::open(&base).unwrap().take(cut), &mut f).unwrap();
            drop(f);
            assert!(cut > 48 && (cut >= source.preamble_len) == (what == "tensor"));
            let e = quantize_model(&truncated, &out, QuantType::Q5_1).unwrap_err();
            assert!(e.contains("truncated") && e.contains(what), "{cut}: {e}");
            assert!(!out.exists());
            let e = read_model_index(&truncated).unwrap_err();
            assert!(e.contains("truncated"), "{e}");
        }
        assert_eq!(entries(dir.path()), ["notes.txt", "truncated.bin"]);

        // A failure does not touch an existing output.
        std::fs::write(&out, "previous").unwrap();
        let e = quantize_model(&text, &out, QuantType::Q4_0).unwrap_err();
        assert!(e.contains("bad magic"), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
        assert_eq!(
            entries(dir.path()),
            ["notes.txt", "out.bin", "truncated.bin"]
        );

        for bad in ["q3_k", "", "f16", "q8"] {
            let e = bad.parse::<QuantType>().unwrap_err();
            assert!(
                e.contains("unknown quantisation type") && e.contains("q5_1"),
                "{e}"
            );
        }
        assert_eq!("Q5_1".parse::<QuantType>(), Ok(QuantType::Q5_1));
        for kind in QuantType::ALL {
            assert_eq!(kind.name().parse::<QuantType>(), Ok(kind));
        }
    }

    /// q5_0 and q4_0 have the block sizes of ggml's formats and load in whisper.cpp as what
    /// they are; a quantised model is not quantised again (its weights are no longer f16/f32).
    #[test]
    fn q5_0_and_q4_0_load_and_are_not_quantised_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for kind in [QuantType::Q5_0, QuantType::Q4_0] {
            let (path, report) = quantised(dir.path(), kind);
            let index = read_model_index(&path).unwrap();
            assert_eq!(index.hparams.ftype, kind.header_ftype());
            let weights: Vec<_> = index
                .tensors
                .iter()
                .filter(|t| is_weight_matrix(&t.name, &t.shape))
                .collect();
            assert_eq!(weights.len(), report.tensors_quantised);
            for t in weights {
                assert_eq!(t.ggml_type, kind.ggml_type(), "{}", t.name);
                assert_eq!(t.data_len, t.elements() as u64 / 32 * block_bytes(kind));
            }
            let ctx = crate::Transcriber::new(path.clone()).model().unwrap();
            assert_eq!(ctx.model_ftype(), kind.ggml_ftype(), "{kind}");
            files.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        let q4 = dir.path().join("ggml-base-q4_0.bin");
        let out = dir.path().join("again.bin");
        let e = quantize_model(&q4, &out, QuantType::Q8_0).unwrap_err();
        assert!(e.contains("already quantised"), "{e}");
        assert!(!out.exists());
        files.sort();
        assert_eq!(entries(dir.path()), files);
    }
}
