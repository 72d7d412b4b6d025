//! Per-user folders, following the XDG base directory rules.

use std::path::PathBuf;

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(fallback),
    }
}

/// `$XDG_DATA_HOME/forewarn` (default `~/.local/share/forewarn`).
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("forewarn")
}

/// `$XDG_CONFIG_HOME/forewarn` (default `~/.config/forewarn`).
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("forewarn")
}
