//! Finds PostgreSQL as `scripts/test` does: `--database-url`, else `$DATABASE_URL`, else a
//! server on 127.0.0.1:5432 (user `postgres`, database `test`), else a throwaway cluster
//! started from the installed `initdb`/`pg_ctl` in a temporary directory (stopped on drop).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A database to use, and the throwaway cluster behind it, if one was started.
#[derive(Debug)]
pub(crate) struct Postgres {
    pub(crate) url: String,
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Cluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = command(self.run_as.as_deref(), &self.pg_ctl);
        stop.arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}

fn command(run_as: Option<&str>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(300),
    )
    .is_ok()
}

fn pg_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|dir| dir.join("initdb").is_file())
            .collect();
        dirs.sort();
        dirs.pop()
    })
}

impl Postgres {
    /// Finds or starts PostgreSQL.
    ///
    /// # Errors
    /// When no server answers and none can be started (with the command that installs one).
    pub(crate) fn find(flag: Option<String>) -> Result<Self, String> {
        if let Some(url) = flag.or_else(|| std::env::var("DATABASE_URL").ok()) {
            println!("[postgres] using {}", redact(&url));
            return Ok(Postgres { url, cluster: None });
        }
        if port_open(5432) {
            let url = "postgres://postgres@127.0.0.1:5432/test".to_owned();
            println!("[postgres] using the server on 127.0.0.1:5432");
            return Ok(Postgres { url, cluster: None });
        }
        let bin = pg_bin().ok_or(
            "no PostgreSQL reachable and none installed: sudo apt-get install -y postgresql, or pass --database-url",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("chatd-multi-worker")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let run_as = nix::unistd::Uid::effective().is_root().then(|| "postgres".to_owned());
        if let Some(user) = &run_as {
            let _ = Command::new("chown").arg(user).arg(dir.path()).output();
        }
        let data = dir.path().join("data");
        let port = (55432..55532).find(|p| !port_open(*p)).ok_or("no free port")?;
        println!("[postgres] starting a throwaway cluster ({}) on port {port}", bin.display());
        let init = command(run_as.as_deref(), &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr)));
        }
        let options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.path().display());
        let start = command(run_as.as_deref(), &bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !start.status.success() {
            return Err(format!("pg_ctl start failed: {}", String::from_utf8_lossy(&start.stderr)));
        }
        let cluster = Cluster { pg_ctl: bin.join("pg_ctl"), data, run_as, _dir: dir };
        Ok(Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(cluster),
        })
    }

    /// Whether this run started the cluster.
    pub(crate) fn throwaway(&self) -> bool {
        self.cluster.is_some()
    }
}

/// A URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
