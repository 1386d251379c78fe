//! Cluster keys as the agent reads and prints them: standard base64 with
//! padding (44 characters for 32 bytes), one per line in a key file, and
//! named by their id (eight hex digits) wherever they are shown. No error
//! message of this module holds a key's text.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand_core::{OsRng, TryRngCore};
use swim_core::seal::KEY_LEN;
use swim_core::{Key, KeyId};

/// Characters of a key in base64.
pub const KEY_TEXT_LEN: usize = 44;

/// What is wrong with a key's text. Holds nothing of the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Not standard padded base64.
    NotBase64,
    /// Base64 of this many bytes, not 32.
    WrongLength(usize),
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::NotBase64 => f.write_str("not base64"),
            KeyProblem::WrongLength(n) => write!(f, "{n} bytes, not {KEY_LEN}"),
        }?;
        write!(
            f,
            ": give a key as `swim keygen` prints it, {KEY_TEXT_LEN} characters of standard base64 encoding {KEY_LEN} bytes"
        )
    }
}

/// A key from its base64 text (surrounding whitespace ignored).
pub fn parse_key(text: &str) -> Result<Key, KeyProblem> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| KeyProblem::NotBase64)?;
    let len = bytes.len();
    let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyProblem::WrongLength(len))?;
    Ok(Key::from_bytes(bytes))
}

/// A key's text: standard base64 with padding.
pub fn key_text(key: &Key) -> String {
    STANDARD.encode(key.as_bytes())
}

/// A new random key from the operating system's generator.
pub fn generate() -> Result<Key, rand_core::OsError> {
    let mut bytes = [0u8; KEY_LEN];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(Key::from_bytes(bytes))
}

/// A key id from its eight hex digits.
pub fn parse_id(text: &str) -> Option<KeyId> {
    let text = text.trim();
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 4];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(KeyId(id))
}

/// The id named by `text`: eight hex digits, or a key (whose id is taken
/// here, so the key itself need not travel to the agent).
pub fn id_or_key(text: &str) -> Result<KeyId, KeyProblem> {
    match parse_id(text) {
        Some(id) => Ok(id),
        None => parse_key(text).map(|k| k.id()),
    }
}

/// Why a key file cannot be used.
#[derive(Debug)]
pub enum KeyFileError {
    /// It cannot be read.
    Read(std::io::Error),
    /// Other users may read or change it (its mode).
    Exposed(u32),
    /// It holds no key.
    Empty,
    /// The key on this line (1-based) is refused.
    Line(usize, KeyProblem),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Read(e) => write!(f, "cannot read it: {e}"),
            KeyFileError::Exposed(mode) => {
                write!(f, "every user of this host may read or change it (mode {mode:04o}): `chmod 600` it")
            }
            KeyFileError::Empty => f.write_str("it holds no key: one base64 key per line, the first seals"),
            KeyFileError::Line(line, problem) => write!(f, "line {line}: {problem}"),
        }
    }
}

/// Read a key file: one key per line, the first primary; blank lines and
/// lines starting with `#` are skipped. On Unix a file other users may
/// read or write (any of the mode's last three bits) is refused.
pub fn read_key_file(path: &Path) -> Result<Vec<Key>, KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(KeyFileError::Read)?.permissions().mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Err(KeyFileError::Exposed(mode));
        }
    }
    let text = std::fs::read_to_string(path).map_err(KeyFileError::Read)?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(parse_key(line).map_err(|p| KeyFileError::Line(i + 1, p))?);
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_base64_and_bad_ones_are_refused_without_echo() {
        let key = generate().unwrap();
        let text = key_text(&key);
        assert_eq!(text.len(), KEY_TEXT_LEN);
        assert_eq!(parse_key(&format!(" {text}\n")).unwrap(), key);
        assert_ne!(generate().unwrap(), key);
        assert_eq!(parse_key("not base64!"), Err(KeyProblem::NotBase64));
        let short = STANDARD.encode([7u8; 16]);
        assert_eq!(parse_key(&short), Err(KeyProblem::WrongLength(16)));
        // Unpadded base64 is not the form keygen prints.
        assert_eq!(parse_key(text.trim_end_matches('=')), Err(KeyProblem::NotBase64));
        let shown = KeyProblem::WrongLength(16).to_string();
        assert!(shown.contains("16 bytes, not 32") && shown.contains("swim keygen") && !shown.contains(&short));
    }

    #[test]
    fn ids_are_eight_hex_digits_or_taken_from_a_key() {
        let key = Key::from_bytes([9; 32]);
        let id = key.id();
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(parse_id("1234567"), None);
        assert_eq!(parse_id("1234567g"), None);
        assert_eq!(id_or_key(&key_text(&key)), Ok(id));
        assert_eq!(id_or_key(&id.to_string()), Ok(id));
        assert_eq!(id_or_key("no pe"), Err(KeyProblem::NotBase64));
        assert_eq!(id_or_key("nope"), Err(KeyProblem::WrongLength(3)));
    }

    #[test]
    fn key_files_hold_one_key_a_line_and_must_be_private() {
        let dir = std::env::temp_dir().join(format!("swim-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k1, k2) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
        let path = dir.join("keys");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            #[cfg(not(unix))]
            let _ = mode;
        };
        write(&format!("# primary first\n{}\n\n{}\n", key_text(&k1), key_text(&k2)), 0o600);
        assert_eq!(read_key_file(&path).unwrap(), vec![k1.clone(), k2]);
        write(&format!("{}\nshort\n", key_text(&k1)), 0o600);
        let e = read_key_file(&path).unwrap_err();
        assert!(matches!(e, KeyFileError::Line(2, KeyProblem::NotBase64)), "{e}");
        write("\n# nothing\n", 0o640);
        assert!(matches!(read_key_file(&path), Err(KeyFileError::Empty)));
        #[cfg(unix)]
        {
            write(&key_text(&k1), 0o644);
            let e = read_key_file(&path).unwrap_err().to_string();
            assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        }
        assert!(matches!(read_key_file(&dir.join("missing")), Err(KeyFileError::Read(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
