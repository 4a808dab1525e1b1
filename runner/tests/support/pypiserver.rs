//! A `pypiserver` on a free loopback port serving a directory of wheels: shared by the
//! egress tests and the egress bench.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `bin` serving `wheels` and waits until it answers: the child and its port.
pub fn start(bin: &Path, wheels: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port");
    let mut child = Command::new(bin)
        .args(["run", "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-a", ".", "-P", "."])
        .arg(wheels)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pypiserver starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("pypiserver did not start on port {port}");
}
