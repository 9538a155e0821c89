//! The emulated AWS side of the pipeline, one per test (local-aws.md):
//! - moto with its Step Functions engine on, and `MOTO_PORT` pointing at the proxy;
//! - `tests/lambda_proxy.py`, which sends Lambda Invoke to `cargo lambda watch` (function ARN ->
//!   bare name, HTTP 500 -> 200 + `X-Amz-Function-Error`) and everything else to moto;
//! - `cargo lambda watch --only-lambda-apis` serving Lambda's invoke and runtime APIs, and the
//!   five prebuilt function binaries started against it with the test's environment.
//!
//! Every process is in its own process group, killed when the stack is dropped (and, for the
//! direct children, when the test thread goes away).

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The five functions, by their one name (crate, binary, ASL `${...FunctionArn}`).
pub const FUNCTIONS: [(&str, &str); 5] = [
    ("snapshot", "SnapshotFunctionArn"),
    ("poll-export", "PollExportFunctionArn"),
    ("fan-out", "FanOutFunctionArn"),
    ("load-chunk", "LoadChunkFunctionArn"),
    ("verify", "VerifyFunctionArn"),
];
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running moto + proxy + `cargo lambda watch`.
pub struct PipelineStack {
    pub moto_port: u16,
    pub proxy_port: u16,
    pub watch_port: u16,
    /// One JSON line per Lambda invocation (function, status, errorType), by the proxy.
    pub invocations_log: PathBuf,
    /// What the functions logged (their stdout and stderr, all instances).
    pub functions_log: PathBuf,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

fn own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

fn wait_for_port(port: u16, what: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > timeout {
            return Err(format!("{what} did not listen on {port} in {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Instances of `load-chunk`: the Distributed Map's children run this many at once.
pub const LOAD_CHUNK_INSTANCES: usize = 4;

/// Where the debug function binaries are: beside this test binary's `deps/` folder.
fn function_bin_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target directory above the test binary")?
        .to_path_buf();
    for (name, _) in FUNCTIONS {
        if !dir.join(name).exists() {
            return Err(format!(
                "{} is missing: run `cargo build --workspace --bins`",
                dir.join(name).display()
            ));
        }
    }
    Ok(dir)
}

/// Builds the five function binaries (debug) if anything changed; a no-op otherwise.
pub fn build_functions() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root()).arg("build").arg("-q");
    // Build as a developer's shell would: no variables of this test process's own package.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_CRATE")
            || k == "CARGO_MANIFEST_DIR"
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "OUT_DIR"
        {
            cmd.env_remove(k);
        }
    }
    for (f, _) in FUNCTIONS {
        cmd.args(["-p", f]);
    }
    let out = cmd.output().map_err(|e| format!("run cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the functions failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

impl PipelineStack {
    /// Starts the stack; `env` is the functions' environment (TARGET_URL, EXPORT_BUCKET, ...).
    pub fn start(env: &[(&str, &str)]) -> Result<PipelineStack, String> {
        let root = repo_root();
        let moto_bin = root.join(".venv/bin/moto_server");
        let python = root.join(".venv/bin/python");
        let watch_bin = root.join(".venv-lambda/bin/cargo-lambda");
        for b in [&moto_bin, &watch_bin] {
            if !b.exists() {
                return Err(format!("{} is missing: run `make deps`", b.display()));
            }
        }
        build_functions()?;
        let dir = tempfile::Builder::new()
            .prefix("snap2dsql-stack-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let (moto_port, proxy_port, watch_port) = (free_port(), free_port(), free_port());
        let invocations_log = dir.path().join("invocations.jsonl");
        let functions_log = dir.path().join("functions.log");
        let mut stack = PipelineStack {
            moto_port,
            proxy_port,
            watch_port,
            invocations_log: invocations_log.clone(),
            functions_log: functions_log.clone(),
            children: Vec::new(),
            _dir: dir,
        };
        let log = |name: &str| {
            std::fs::File::create(stack._dir.path().join(name)).map_err(|e| e.to_string())
        };

        let mut moto = Command::new(&moto_bin);
        moto.args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .env("MOTO_PORT", proxy_port.to_string())
            .stdin(Stdio::null())
            .stdout(log("moto.log")?)
            .stderr(log("moto.err")?);
        own_group(&mut moto);
        stack
            .children
            .push(moto.spawn().map_err(|e| format!("start moto: {e}"))?);

        let mut proxy = Command::new(&python);
        proxy
            .arg(root.join("tests/lambda_proxy.py"))
            .args([
                proxy_port.to_string(),
                moto_port.to_string(),
                watch_port.to_string(),
            ])
            .arg(&invocations_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log("proxy.err")?);
        own_group(&mut proxy);
        stack
            .children
            .push(proxy.spawn().map_err(|e| format!("start the proxy: {e}"))?);

        // The Lambda runtime API only: the functions are the prebuilt binaries, started here
        // the way Lambda starts them (a function's instances each pull the next invocation).
        let mut watch = Command::new(&watch_bin);
        watch
            .current_dir(&root)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(watch_port.to_string())
            .stdin(Stdio::null())
            .stdout(log("watch.log")?)
            .stderr(log("watch.err")?);
        own_group(&mut watch);
        stack.children.push(
            watch
                .spawn()
                .map_err(|e| format!("start cargo lambda watch: {e}"))?,
        );
        wait_for_port(watch_port, "cargo lambda watch", Duration::from_secs(60))?;

        let bin_dir = function_bin_dir()?;
        let functions_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stack.functions_log)
            .map_err(|e| e.to_string())?;
        for (name, _) in FUNCTIONS {
            let instances = if name == "load-chunk" {
                LOAD_CHUNK_INSTANCES
            } else {
                1
            };
            for _ in 0..instances {
                let mut f = Command::new(bin_dir.join(name));
                f.env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{watch_port}/.rt/{name}"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{moto_port}"))
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", REGION)
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
                .stdin(Stdio::null())
                .stdout(functions_log.try_clone().map_err(|e| e.to_string())?)
                .stderr(functions_log.try_clone().map_err(|e| e.to_string())?);
                for (k, v) in env {
                    f.env(k, v);
                }
                own_group(&mut f);
                stack.children.push(
                    f.spawn()
                        .map_err(|e| format!("start function {name}: {e}"))?,
                );
            }
        }
        wait_for_port(moto_port, "moto", Duration::from_secs(30))?;
        wait_for_port(proxy_port, "the Lambda proxy", Duration::from_secs(30))?;
        stack.enable_state_machine_engine()?;
        Ok(stack)
    }

    /// Switches moto's Step Functions engine on (real ASL interpretation, Lambda via HTTP).
    fn enable_state_machine_engine(&self) -> Result<(), String> {
        let body =
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.moto_port))
            .map_err(|e| e.to_string())?;
        use std::io::{Read, Write};
        write!(
            s,
            "POST /moto-api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
        let status = reply.split_whitespace().nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            return Err(format!("moto refused the engine config: {reply}"));
        }
        Ok(())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto_port)
    }

    /// The SDK configuration for the emulator (test credentials).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::emulator_config(&self.endpoint())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        crate::emulator_s3(&self.endpoint())
    }

    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk_config())
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk_config())
    }

    /// The ASL definition with the SAM substitutions filled with local values.
    pub fn definition(&self, bucket: &str, load_concurrency: u32) -> String {
        let mut asl = std::fs::read_to_string(repo_root().join("statemachine/migrate.asl.json"))
            .expect("read statemachine/migrate.asl.json");
        for (name, placeholder) in FUNCTIONS {
            asl = asl.replace(
                &format!("${{{placeholder}}}"),
                &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
            );
        }
        asl.replace("${ExportBucket}", bucket)
            .replace("${LoadConcurrency}", &load_concurrency.to_string())
    }

    /// The proxy's invocation records: (function, error type if the invocation failed).
    pub fn invocations(&self) -> Vec<(String, Option<String>)> {
        std::fs::read_to_string(&self.invocations_log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("proxy log line");
                (
                    v["function"].as_str().unwrap_or_default().to_string(),
                    v["errorType"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    /// Everything the functions printed, for failure messages and log searches.
    pub fn function_logs(&self) -> String {
        std::fs::read_to_string(&self.functions_log).unwrap_or_default()
    }
}

impl Drop for PipelineStack {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on the child's own process group.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGTERM);
            }
        }
        for c in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }
}
