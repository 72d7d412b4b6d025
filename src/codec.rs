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

/// A compressed snapshot's text, decompressed into a buffer of exactly its size when its frame
/// says it (as [`encode_content`]'s do), so a 40 MB text does not pass through a buffer
/// doubled to 64 MB. A size past what the blob could plausibly hold is not trusted.
pub fn decompress(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        // One context per thread, as for compressing: a context per snapshot read cost a
        // tenth of reading it.
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    match zstd::zstd_safe::get_frame_content_size(blob) {
        Ok(Some(n)) if n <= (blob.len() as u64).saturating_mul(1024) => {
            let n = n as usize;
            ZSTD.with_borrow_mut(|d| {
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                match d.as_mut() {
                    Some(d) => d.decompress(blob, n),
                    None => zstd::bulk::decompress(blob, n),
                }
            })
        }
        _ => zstd::stream::decode_all(blob),
    }
}

/// zstd level 1: text pages compress 3-4x at it, twice as fast as the default level 3.
const ZSTD_LEVEL: i32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_text_round_trips_with_and_without_a_size_in_the_frame() {
        let text = "a line of a page that repeats\n".repeat(10_000);
        let (encoding, blob) = encode_content(&text);
        assert_eq!(encoding, 1);
        let back = decompress(&blob).unwrap();
        assert_eq!(back, text.as_bytes());
        assert_eq!(
            back.capacity(),
            text.len(),
            "decompressed into an exact buffer"
        );
        // A frame written by a streaming encoder does not say its size.
        let streamed = zstd::stream::encode_all(text.as_bytes(), 1).unwrap();
        assert_eq!(decompress(&streamed).unwrap(), text.as_bytes());
        assert!(decompress(b"not zstd at all").is_err());
    }
}
