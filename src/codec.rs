//! How a snapshot's text is stored: as is, lz4- or zstd-compressed. Below every stage: judging
//! compresses on its own threads, the store writes and reads the bytes.
//!
//! A check stores with lz4 (texts under [`ZSTD_FROM`]): on the benchmark's cold pass zstd
//! level 1 took a third of the CPU (about 270 MB/s a core on text), lz4 a sixth (twice as
//! fast, a third larger). `forewarn gc` and an idle daemon re-encode what lz4 stored with
//! zstd, when nothing waits on it. Event diffs are stored with zstd: they are small, and one
//! column tells text from compressed bytes by zstd's magic.

/// Snapshots at least this large are stored compressed.
pub const COMPRESS_FROM: usize = 2048;

/// The `encoding` column of a snapshot.
pub mod encoding {
    /// UTF-8 text as is.
    pub const TEXT: i64 = 0;
    /// zstd-compressed UTF-8 text (one frame, which says its size).
    pub const ZSTD: i64 = 1;
    /// lz4-compressed UTF-8 text: one block after its size (4 bytes, little-endian).
    pub const LZ4: i64 = 2;
}

/// How a check stores a snapshot's text: `(encoding, bytes)`, lz4-compressed from
/// [`COMPRESS_FROM`] bytes on, zstd-compressed from [`ZSTD_FROM`].
pub fn encode_content(text: &str) -> (i64, Vec<u8>) {
    if text.len() < COMPRESS_FROM {
        return (encoding::TEXT, text.as_bytes().to_vec());
    }
    if text.len() >= ZSTD_FROM {
        return compact(text, FAST_LEVEL);
    }
    (
        encoding::LZ4,
        lz4_flex::block::compress_prepend_size(text.as_bytes()),
    )
}

/// Texts this large are stored with zstd even by a check: a changed huge page holds its new
/// snapshot's bytes while it is judged and written, and lz4's, twice as large, raised the
/// changed peak of a 50 MB page from 161 to 178 MB (`benches/memory.sh`).
pub const ZSTD_FROM: usize = 4 << 20;

/// A text packed as small as zstd makes it at `level` (from [`COMPRESS_FROM`] bytes on): for
/// event diffs, and for `gc` compacting snapshots.
pub fn compact(text: &str, level: i32) -> (i64, Vec<u8>) {
    thread_local! {
        // One context per thread: creating one costs as much as compressing a small page.
        static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    if text.len() >= COMPRESS_FROM {
        let z = ZSTD.with_borrow_mut(|c| {
            if c.as_ref().is_none_or(|(l, _)| *l != level) {
                *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
            }
            c.as_mut()?.1.compress(text.as_bytes()).ok()
        });
        if let Some(z) = z {
            return (encoding::ZSTD, z);
        }
    }
    (encoding::TEXT, text.as_bytes().to_vec())
}

/// zstd level for what is written while a pass runs (event diffs, huge snapshots, a huge
/// page's packed first text): the fastest level.
pub const FAST_LEVEL: i32 = 1;
/// zstd level for `gc`: level 3 packs these texts 4 % smaller than level 1, at 85 % its speed.
pub const COMPACT_LEVEL: i32 = 3;

/// A stored text's bytes, as they were before [`encode_content`] or [`compact`].
pub fn decode(encoding: i64, blob: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        encoding::TEXT => Ok(blob.to_vec()),
        encoding::ZSTD => decompress(blob),
        encoding::LZ4 => lz4_decompress(blob),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unknown snapshot encoding {other}"),
        )),
    }
}

/// An lz4 block after its size. lz4 packs at most 255 to 1, so a larger size is corruption,
/// not a reason to allocate gigabytes.
fn lz4_decompress(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let (size, block) = blob
        .split_first_chunk::<4>()
        .ok_or_else(|| invalid("an lz4 snapshot shorter than its size".into()))?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > block.len().saturating_mul(255).saturating_add(16) {
        return Err(invalid(format!(
            "an lz4 snapshot of {} bytes says it holds {size}",
            blob.len()
        )));
    }
    let out = lz4_flex::block::decompress(block, size).map_err(|e| invalid(e.to_string()))?;
    if out.len() != size {
        return Err(invalid(format!(
            "an lz4 snapshot said {size} bytes and held {}",
            out.len()
        )));
    }
    Ok(out)
}

/// A compressed snapshot's text, decompressed into a buffer of exactly its size when its frame
/// says it (as [`compact`]'s do), so a 40 MB text does not pass through a buffer
/// doubled to 64 MB. A size past what the blob could plausibly hold is not trusted.
fn decompress(blob: &[u8]) -> std::io::Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_text_round_trips_with_and_without_a_size_in_the_frame() {
        let text = "a line of a page that repeats\n".repeat(10_000);
        let (enc, blob) = compact(&text, FAST_LEVEL);
        assert_eq!(enc, encoding::ZSTD);
        let back = decode(enc, &blob).unwrap();
        assert_eq!(back, text.as_bytes());
        assert_eq!(
            back.capacity(),
            text.len(),
            "decompressed into an exact buffer"
        );
        // A frame written by a streaming encoder does not say its size.
        let streamed = zstd::stream::encode_all(text.as_bytes(), 1).unwrap();
        assert_eq!(decode(enc, &streamed).unwrap(), text.as_bytes());
        assert!(decode(enc, b"not zstd at all").is_err());
        // Another level on the same thread gets its own context.
        let (_, smaller) = compact(&text, COMPACT_LEVEL);
        assert_eq!(decode(enc, &smaller).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_check_stores_lz4_from_the_threshold_on() {
        let small = "x".repeat(COMPRESS_FROM - 1);
        assert_eq!(
            encode_content(&small),
            (encoding::TEXT, small.clone().into_bytes())
        );
        let text = "a line of a page that repeats\n".repeat(10_000);
        let (enc, blob) = encode_content(&text);
        assert_eq!(enc, encoding::LZ4);
        assert!(blob.len() < text.len() / 10, "{} bytes", blob.len());
        let back = decode(enc, &blob).unwrap();
        assert_eq!(back, text.as_bytes());
        assert_eq!(back.capacity(), text.len(), "an exact buffer");
    }

    #[test]
    fn a_huge_text_is_stored_with_zstd() {
        let text = "a line of a page that repeats, with a number 1234567\n".repeat(ZSTD_FROM / 50);
        assert!(text.len() >= ZSTD_FROM);
        let (enc, blob) = encode_content(&text);
        assert_eq!(enc, encoding::ZSTD);
        assert_eq!(decode(enc, &blob).unwrap(), text.as_bytes());
        let below = &text[..ZSTD_FROM - 1];
        assert_eq!(encode_content(below).0, encoding::LZ4);
    }

    #[test]
    fn a_damaged_lz4_snapshot_is_an_error_not_a_huge_allocation() {
        let (_, blob) = encode_content(&"abc\n".repeat(4096));
        let mut huge = blob.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode(encoding::LZ4, &huge).unwrap_err();
        assert!(e.to_string().contains("says it holds"), "{e}");
        let mut short = blob.clone();
        short[..4].copy_from_slice(&100u32.to_le_bytes());
        assert!(
            decode(encoding::LZ4, &short).is_err(),
            "a size smaller than the text"
        );
        assert!(decode(encoding::LZ4, &blob[..3]).is_err());
        assert!(
            decode(encoding::LZ4, &blob[..blob.len() / 2]).is_err(),
            "cut short"
        );
        assert!(
            decode(7, &blob)
                .unwrap_err()
                .to_string()
                .contains("encoding 7")
        );
    }
}
