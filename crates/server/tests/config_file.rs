//! The configuration file through the real binary: `config check` lists
//! every problem with its line and fails; `serve --config` takes the file's
//! settings under flags and CONFCAST_* variables, and refuses to start on a
//! bad file.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{confcast, free_port};


/// Whether something answers /healthz on `port` within a few seconds.
fn answers(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            return reply.starts_with("HTTP/1.1 200");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn config_check_lists_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:9000\"\nmedia_port = 40100\n").unwrap();
    let out = confcast().args(["config", "check"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 settings, all valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"nope\"\n\nmedia_port = 99999\nsecret_sauce = true\n").unwrap();
    let out = confcast().args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("line 1: `listen`: invalid value 'nope'"), "{text}");
    assert!(text.contains("line 3: `media_port`: invalid value '99999'"), "{text}");
    assert!(text.contains("line 4: unknown setting `secret_sauce`"), "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");

    let out = confcast().args(["config", "check"]).arg(dir.path().join("missing.toml")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn serve_takes_the_file_under_flags_and_variables_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_flag, from_env) = (free_port(), free_port(), free_port());
    let file = dir.path().join("confcast.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:{from_file}\"\ndata = \"{}\"\nmedia_port = 0\nlog = \"warn\"\n", data.display()),
    )
    .unwrap();

    for (setup, port) in [("file", from_file), ("flag", from_flag), ("env", from_env)] {
        let mut command = confcast();
        command.args(["serve", "--config"]).arg(&file).stdout(Stdio::null()).stderr(Stdio::null());
        match setup {
            "flag" => {
                command.args(["--listen", &format!("127.0.0.1:{from_flag}")]);
            }
            "env" => {
                command.env("CONFCAST_LISTEN", format!("127.0.0.1:{from_env}"));
            }
            _ => {}
        }
        let mut server = command.spawn().unwrap();
        let up = answers(port);
        server.kill().unwrap();
        server.wait().unwrap();
        assert!(up, "listening on the {setup}'s port");
    }
    assert!(data.join("confcast.sqlite").exists(), "the file's data folder was used");

    std::fs::write(&file, "listen = 8080\n").unwrap();
    let out = confcast().args(["serve", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("line 1: `listen`") && text.contains("nothing started"), "{text}");
}
