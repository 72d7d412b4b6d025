//! How a snapshot's text is stored: as is, or zstd-compressed. Below every stage: judging
//! compresses on its own threads, the store writes and reads the bytes.

/// Snapshots at least this large are stored zstd-compressed.
pub const COMPRESS_FROM: usize = 2048;

/// How a snapshot's text is stored: `(encoding, bytes)`, zstd-compressed from
/// [`COMPRESS_FROM`] bytes on.
pub fn encode_content(text: &str) -> (i64, Vec<u8>) {
    thread_local! {
        // One context per thread: creating one costs as much as compressing a small page.
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    if text.len() >= COMPRESS_FROM {
        let z = ZSTD.with_borrow_mut(|c| {
            if c.is_none() {
                *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            c.as_mut()?.compress(text.as_bytes()).ok()
        });
        if let Some(z) = z {
            return (1, z);
        }
    }
    (0, text.as_bytes().to_vec())
}

/// zstd level 1: text pages compress 3-4x at it, twice as fast as the default level 3.
const ZSTD_LEVEL: i32 = 1;
