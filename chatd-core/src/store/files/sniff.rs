//! What a file is, told from its bytes alone ([BEHAVIOUR §19](crate::behaviour#19-attachments)): the name and the client's
//! header are never trusted.

/// The media types a file store accepts.
#[cfg(test)]
pub(crate) const ACCEPTED_TYPES: [&str; 6] =
    ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"];

/// The media type of `bytes`, when they are a file chatd accepts: a PNG, JPEG, GIF or WebP
/// image whose header also gives its dimensions, a PDF (`%PDF-`), or plain UTF-8 text with no
/// control characters but tab, line feed, form feed and carriage return. `None` for anything
/// else, including empty input and an image signature followed by a header that does not
/// parse. Never panics, whatever the bytes.
#[must_use]
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.is_empty() {
        return None;
    }
    if let Some(kind) = infer::get(bytes) {
        return match kind.mime_type() {
            media @ ("image/png" | "image/jpeg" | "image/gif" | "image/webp") => {
                image(bytes, media)
            }
            "application/pdf" => Some("application/pdf"),
            _ => None,
        };
    }
    is_plain_text(bytes).then_some("text/plain")
}

/// `media`, when the header of the image `bytes` parses with a width and a height.
fn image(bytes: &[u8], media: &'static str) -> Option<&'static str> {
    let size = imagesize::blob_size(bytes).ok()?;
    (size.width > 0 && size.height > 0).then_some(media)
}

/// The width and height of an accepted image, from its header.
#[must_use]
pub(crate) fn image_dimensions(bytes: &[u8]) -> Option<(usize, usize)> {
    let size = imagesize::blob_size(bytes).ok()?;
    Some((size.width, size.height))
}

fn is_plain_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 1×1 PNG, written out by hand: signature, IHDR, IDAT, IEND.
    pub(crate) fn tiny_png() -> Vec<u8> {
        crate::store::files::testing_png(3, 2)
    }

    /// A PNG whose header says it is 0 pixels wide.
    fn zero_width_png() -> Vec<u8> {
        let mut png = tiny_png();
        png[16..20].copy_from_slice(&[0, 0, 0, 0]);
        png
    }

    /// Each accepted format's leading signature, written independently of the sniffer.
    fn signature_of(media: &str) -> &'static [&'static [u8]] {
        match media {
            "image/png" => &[b"\x89PNG\r\n\x1a\n"],
            "image/jpeg" => &[b"\xff\xd8\xff"],
            "image/gif" => &[b"GIF87a", b"GIF89a"],
            "image/webp" => &[b"RIFF"],
            "application/pdf" => &[b"%PDF-"],
            _ => &[b""],
        }
    }

    #[test]
    fn each_accepted_kind_is_told_from_its_bytes() {
        assert_eq!(sniff(&tiny_png()), Some("image/png"));
        assert_eq!(image_dimensions(&tiny_png()), Some((3, 2)));
        let gif = b"GIF89a\x02\x00\x03\x00\x00\x00\x00;";
        assert_eq!(sniff(gif), Some("image/gif"));
        let mut webp = b"RIFF\x1a\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
        webp.extend([1, 0, 0, 1, 0, 0]);
        assert_eq!(sniff(&webp), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), Some("application/pdf"));
        assert_eq!(sniff("fn main() {}\n\tokay ✓\r\n".as_bytes()), Some("text/plain"));
    }

    #[test]
    fn what_is_not_accepted_is_refused() {
        for refused in [
            &b""[..],
            b"\x89PNG\r\n\x1a\ngarbage",
            b"\xff\xd8\xff",
            b"GIF89a",
            b"PK\x03\x04zip file",
            b"\x7fELF\x02\x01\x01",
            b"text with a NUL\x00 in it",
            b"\xc3\x28 not utf-8",
            b"bell\x07",
            &zero_width_png(),
        ] {
            assert_eq!(sniff(refused), None, "{refused:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes: never a panic, and an image or PDF verdict only with that
        /// format's own signature at the start (never a wrong accept of a non-image).
        #[test]
        fn arbitrary_bytes_never_panic_nor_pass_as_another_kind(
            bytes in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            if let Some(media) = sniff(&bytes) {
                prop_assert!(ACCEPTED_TYPES.contains(&media));
                if media == "text/plain" {
                    prop_assert!(std::str::from_utf8(&bytes).is_ok());
                } else {
                    prop_assert!(signature_of(media).iter().any(|sig| bytes.starts_with(sig)),
                        "{media} without its signature: {bytes:?}");
                }
                if media.starts_with("image/") {
                    prop_assert!(image_dimensions(&bytes).is_some());
                }
            }
        }

        /// An image signature followed by arbitrary bytes is an image only when its header
        /// parses; a valid image with arbitrary bytes appended stays the same image.
        #[test]
        fn signatures_with_arbitrary_tails(
            tail in proptest::collection::vec(any::<u8>(), 0..256),
            which in 0usize..4,
        ) {
            let signature: &[u8] = [&b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff", b"GIF89a", b"RIFF"][which];
            let mut bytes = signature.to_vec();
            bytes.extend(&tail);
            if let Some(media) = sniff(&bytes) {
                prop_assert!(media.starts_with("image/") || media == "text/plain");
                if media.starts_with("image/") {
                    prop_assert!(image_dimensions(&bytes).is_some());
                }
            }
            let mut png = tiny_png();
            png.extend(&tail);
            prop_assert_eq!(sniff(&png), Some("image/png"));
        }
    }
}
