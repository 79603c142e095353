//! The `cryptonn` binary end to end: the three roles through files, and
//! hostile files that must give a one-line error and exit code 1, never a panic.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cryptonn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryptonn"))
        .args(args)
        .output()
        .expect("run cryptonn")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cryptonn-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs setup, encrypt and derive-key in `dir`; returns (mpk, key, ct).
fn pipeline(dir: &Path, group: &str, x: &str, y: &str) -> (PathBuf, PathBuf, PathBuf) {
    assert!(
        cryptonn(&["setup", "--group", group, "--dim", "4", "--out", s(dir)])
            .status
            .success()
    );
    let (mpk, msk) = (dir.join("mpk.json"), dir.join("msk.json"));
    fs::write(dir.join("x.json"), x).unwrap();
    fs::write(dir.join("y.json"), y).unwrap();
    let (ct, key) = (dir.join("ct.json"), dir.join("key.json"));
    let out = cryptonn(&[
        "encrypt",
        "--mpk",
        s(&mpk),
        "--input",
        s(&dir.join("x.json")),
        "--out",
        s(&ct),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cryptonn(&[
        "derive-key",
        "--msk",
        s(&msk),
        "--vector",
        s(&dir.join("y.json")),
        "--out",
        s(&key),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (mpk, key, ct)
}

fn decrypt(mpk: &Path, key: &Path, ct: &Path, bound: &str) -> Output {
    cryptonn(&[
        "decrypt",
        "--mpk",
        s(mpk),
        "--key",
        s(key),
        "--ct",
        s(ct),
        "--bound",
        bound,
    ])
}

fn assert_clean_error(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "not one line: {err}"
    );
}

#[test]
fn round_trip_in_every_group() {
    for group in ["ristretto", "modp2048"] {
        let dir = scratch(group);
        let (mpk, key, ct) = pipeline(&dir, group, "[1, -2, 255, 0]", "[4095, 7, -1, 9]");
        let out = decrypt(&mpk, &key, &ct, "100000");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            (4095 - 14 - 255).to_string()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(dir.join("msk.json"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
    }
}

#[test]
fn out_of_bound_result_is_an_error() {
    let dir = scratch("bound");
    let (mpk, key, ct) = pipeline(
        &dir,
        "ristretto",
        "[255, 255, 255, 255]",
        "[4095, 4095, 4095, 4095]",
    );
    assert_clean_error(&decrypt(&mpk, &key, &ct, "1000"));
}

#[test]
fn rejects_bad_files() {
    let dir = scratch("bad");
    let (mpk, key, ct) = pipeline(&dir, "ristretto", "[1, 2, 3, 4]", "[1, 1, 1, 1]");
    let missing = dir.join("missing.json");
    assert_clean_error(&decrypt(&mpk, &key, &missing, "100"));

    let ct_text = fs::read_to_string(&ct).unwrap();
    let cases = [
        ("truncated", ct_text[..ct_text.len() / 2].to_string()),
        ("not json", "garbage".to_string()),
        ("wrong group", ct_text.replace("ristretto255", "modp2048")),
        ("non-canonical", {
            let v: serde_json::Value = serde_json::from_str(&ct_text).unwrap();
            ct_text.replace(v["ct0"].as_str().unwrap(), &"ff".repeat(32))
        }),
        ("wrong length", {
            let v: serde_json::Value = serde_json::from_str(&ct_text).unwrap();
            let first = v["ct"][0].as_str().unwrap();
            ct_text.replacen(&format!("\"{first}\","), "", 1)
        }),
    ];
    for (name, text) in cases {
        let bad = dir.join(format!("{name}.json"));
        fs::write(&bad, text).unwrap();
        let out = decrypt(&mpk, &key, &bad, "100");
        assert_clean_error(&out);
        eprintln!("{name}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }

    // A key from another master key.
    let other = scratch("other");
    let (_, other_key, _) = pipeline(&other, "ristretto", "[1, 2, 3, 4]", "[1, 1, 1, 1]");
    assert_clean_error(&decrypt(&mpk, &other_key, &ct, "100"));
    // A vector of the wrong length.
    fs::write(dir.join("short.json"), "[1, 2]").unwrap();
    let out = cryptonn(&[
        "encrypt",
        "--mpk",
        s(&mpk),
        "--input",
        s(&dir.join("short.json")),
        "--out",
        s(&dir.join("o.json")),
    ]);
    assert_clean_error(&out);
}

#[test]
fn mutated_files_never_panic() {
    let dir = scratch("mutate");
    let (mpk, key, ct) = pipeline(&dir, "ristretto", "[1, 2, 3, 4]", "[1, 1, 1, 1]");
    let files = [
        fs::read(&mpk).unwrap(),
        fs::read(&key).unwrap(),
        fs::read(&ct).unwrap(),
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..30 {
        let which = round % 3;
        let mut bytes = files[which].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        let paths = [
            dir.join("m_mpk.json"),
            dir.join("m_key.json"),
            dir.join("m_ct.json"),
        ];
        for (i, p) in paths.iter().enumerate() {
            fs::write(p, if i == which { &bytes } else { &files[i] }).unwrap();
        }
        let out = decrypt(&paths[0], &paths[1], &paths[2], "100");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "round {round}: {:?}",
            out.status
        );
    }
}

#[test]
fn bad_command_line_exits_2() {
    assert_eq!(cryptonn(&["setup", "--dim", "4"]).status.code(), Some(2));
    assert_eq!(
        cryptonn(&["setup", "--group", "p256", "--dim", "4", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
    let out = cryptonn(&["setup", "--dim", "0", "--out", s(&scratch("dim0"))]);
    assert_clean_error(&out);
}
