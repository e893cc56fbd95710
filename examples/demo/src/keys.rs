//! The encryption key for provider API keys stored in PostgreSQL (BEHAVIOUR §12): a service
//! that keeps keys in a database configures a cipher by default.
//!
//! Where the key comes from, first found wins:
//! 1. `CHATD_SECRET_KEY`: the key itself (base64 of 32 bytes);
//! 2. the file named by `CHATD_SECRET_KEY_FILE`, else `chatd-secret.key` in the current
//!    directory. If that file does not exist, a new key is generated into it (mode 0600)
//!    and the program says so on standard error.

use std::io::Write;
use std::path::PathBuf;

use chatd_core::SecretCipher;

use crate::setup::SetupError;

/// The default key file, in the current directory.
pub const DEFAULT_KEY_FILE: &str = "chatd-secret.key";

/// Where the cipher's key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `CHATD_SECRET_KEY`.
    Environment,
    /// A key file that existed.
    File(PathBuf),
    /// A key file this run created.
    Generated(PathBuf),
}

/// The cipher for provider keys, and where its key came from.
///
/// # Errors
/// A key that is not base64 of 32 bytes (naming where it came from), or a key file that
/// cannot be read or created.
pub fn cipher() -> Result<(SecretCipher, KeySource), SetupError> {
    if let Ok(value) = std::env::var("CHATD_SECRET_KEY") {
        let cipher =
            SecretCipher::from_base64(&value).map_err(|err| format!("CHATD_SECRET_KEY: {err}"))?;
        return Ok((cipher, KeySource::Environment));
    }
    let path = std::env::var_os("CHATD_SECRET_KEY_FILE")
        .map_or_else(|| PathBuf::from(DEFAULT_KEY_FILE), PathBuf::from);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let cipher = SecretCipher::from_base64(text.trim())
                .map_err(|err| format!("{}: {err}", path.display()))?;
            Ok((cipher, KeySource::File(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretCipher::generate_key();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&path)
                .map_err(|err| format!("cannot create the key file {}: {err}", path.display()))?;
            file.write_all(format!("{}\n", key.as_str()).as_bytes())
                .map_err(|err| format!("cannot write the key file {}: {err}", path.display()))?;
            let cipher = SecretCipher::from_base64(&key)?;
            Ok((cipher, KeySource::Generated(path)))
        }
        Err(err) => Err(format!("cannot read the key file {}: {err}", path.display()).into()),
    }
}

/// Restricts a new file to its owner.
trait OwnerOnly {
    fn mode_0600(&mut self) -> &mut Self;
}

impl OwnerOnly for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// The line a program prints about its key.
#[must_use]
pub fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Environment => "provider keys encrypted with the key in CHATD_SECRET_KEY".into(),
        KeySource::File(path) => {
            format!("provider keys encrypted with the key in {}", path.display())
        }
        KeySource::Generated(path) => format!(
            "generated a new encryption key for provider keys in {} — keep it with the \
             database: without it the stored keys cannot be read",
            path.display()
        ),
    }
}
