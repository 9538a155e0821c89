//! The emulated AWS side of the pipeline, one per test (local-aws.md):
//! - moto with its Step Functions engine on, and `MOTO_PORT` pointing at the proxy;
//! - `tests/lambda_proxy.py`, which sends Lambda Invoke to `cargo lambda watch` (function ARN ->
//!   bare name, HTTP 500 -> 200 + `X-Amz-Function-Error`) and everything else to moto;
//! - `cargo lambda watch --only-lambda-apis` serving Lambda's invoke and runtime APIs, and the
//!   five prebuilt function binaries started against it with the test's environment.
//!
//! Every process is in its own process group, killed when the stack is dropped (and, for the
//! direct children, when the test thread goes away).
//!
//! IAM as deployed: `tests/cfn_stack.py` creates in moto every role of `infra/template.yaml` that a
//! function or the state machine runs as, with the template's own policy documents resolved with
//! this stack's names, and assumes it. Each function process gets its role's temporary
//! credentials; the proxy acts as the state machine's role (Lambda Invoke checked against its
//! documents, the engine's S3 calls signed again with its credentials); then moto's access
//! control is switched on (`POST /moto-api/reset-auth 0`), so every later request is checked. The
//! test's own calls use an `operator` user. What moto evaluates, and so what this proves, is in
//! `tests/cfn_stack.py` and the README's "Permissions, proven locally".

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
/// The emulated stack's name: function `snap2dsql-load-chunk`, state machine `snap2dsql-migrate`.
pub const STACK_NAME: &str = "snap2dsql";
/// The template's SourceClusterId in the emulated stack.
pub const SOURCE_CLUSTER: &str = "storefront-prod";
/// The KMS key id the emulated stack's ARNs name.
pub const KMS_KEY_ID: &str = "test";

/// The names `infra/template.yaml` is resolved with for a stack whose export bucket is `bucket`
/// (see `tests/cfn_stack.py`).
pub fn template_names(bucket: &str) -> serde_json::Value {
    serde_json::json!({
        "StackName": STACK_NAME,
        "Region": REGION,
        "AccountId": ACCOUNT,
        "Partition": "aws",
        "Parameters": {
            "SourceClusterId": SOURCE_CLUSTER,
            "DsqlClusterEndpoint": "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
            "DsqlClusterArn": format!("arn:aws:dsql:{REGION}:{ACCOUNT}:cluster/abcdefghijklmnopqrstuvwxyz"),
            "EnableExportCompletedTrigger": "true",
        },
        "Physical": { "ExportBucket": bucket, "ExportKey": KMS_KEY_ID },
    })
}

fn cfn_stack(args: &[&str]) -> Result<serde_json::Value, String> {
    let root = repo_root();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/cfn_stack.py"))
        .args(args)
        .output()
        .map_err(|e| format!("run tests/cfn_stack.py: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tests/cfn_stack.py {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("tests/cfn_stack.py output: {e}"))
}

/// `infra/template.yaml` with every intrinsic resolved for a stack whose bucket is `bucket`:
/// `["Resources"][logical id]["Properties"]...`.
pub fn resolved_template(bucket: &str) -> Result<serde_json::Value, String> {
    let template = repo_root().join("infra/template.yaml");
    cfn_stack(&[
        "json",
        template.to_str().ok_or("template path is not UTF-8")?,
        &template_names(bucket).to_string(),
    ])
}

/// Temporary credentials of one principal in the emulator.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Principal {
    fn from_json(v: &serde_json::Value) -> Result<Principal, String> {
        let s = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("principal without {k}: {v}"))
        };
        Ok(Principal {
            role: s("role")?,
            access_key_id: s("access_key_id")?,
            secret_access_key: s("secret_access_key")?,
            session_token: v["session_token"].as_str().map(str::to_string),
        })
    }
}

/// How the emulated stack is set up.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// (role, action) pairs taken out of the template's policies before the roles are made.
    pub removals: Vec<(String, String)>,
}

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
    /// The test's own principal (all actions).
    pub operator: Principal,
    /// The role each function binary runs as.
    pub roles: Vec<(String, Principal)>,
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
        PipelineStack::start_with(env, &StackOptions::default())
    }

    /// [`PipelineStack::start`] with options (a permission taken out).
    pub fn start_with(
        env: &[(&str, &str)],
        options: &StackOptions,
    ) -> Result<PipelineStack, String> {
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
            operator: Principal {
                role: String::new(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
                session_token: None,
            },
            roles: Vec::new(),
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
        wait_for_port(moto_port, "moto", Duration::from_secs(30))?;

        // The template's roles, made and assumed in moto (access control is still off).
        let bucket = env
            .iter()
            .find(|(k, _)| *k == "EXPORT_BUCKET")
            .map(|(_, v)| *v)
            .ok_or("the functions' environment names no EXPORT_BUCKET")?;
        let removals: Vec<[&str; 2]> = options
            .removals
            .iter()
            .map(|(r, a)| [r.as_str(), a.as_str()])
            .collect();
        let template = root.join("infra/template.yaml");
        let made = cfn_stack(&[
            "principals",
            &stack.endpoint(),
            template.to_str().ok_or("template path is not UTF-8")?,
            &template_names(bucket).to_string(),
            &serde_json::to_string(&removals).map_err(|e| e.to_string())?,
        ])?;
        stack.operator = Principal::from_json(&made["operator"])?;
        for (name, _) in FUNCTIONS {
            stack.roles.push((
                name.to_string(),
                Principal::from_json(&made["functions"][name])?,
            ));
        }
        let machine = &made["state_machine"];
        let role = machine["role"].as_str().unwrap_or_default();
        let mut principal_file = machine.clone();
        principal_file["documents"] = made["documents"][role].clone();
        let principal_path = stack._dir.path().join("state-machine-principal.json");
        std::fs::write(&principal_path, principal_file.to_string()).map_err(|e| e.to_string())?;

        let mut proxy = Command::new(&python);
        proxy
            .arg(root.join("tests/lambda_proxy.py"))
            .args([
                proxy_port.to_string(),
                moto_port.to_string(),
                watch_port.to_string(),
            ])
            .arg(&invocations_log)
            .arg(&principal_path)
            .arg(format!("{STACK_NAME}-"))
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
            let instances = if name == "load-chunk" || name == "verify" {
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
                .env("AWS_REGION", REGION)
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
                .stdin(Stdio::null())
                .stdout(functions_log.try_clone().map_err(|e| e.to_string())?)
                .stderr(functions_log.try_clone().map_err(|e| e.to_string())?);
                for (k, v) in env {
                    f.env(k, v);
                }
                // The function's role, as Lambda hands it over: temporary credentials.
                let role = stack.role_of(name)?.clone();
                f.env("AWS_ACCESS_KEY_ID", &role.access_key_id)
                    .env("AWS_SECRET_ACCESS_KEY", &role.secret_access_key)
                    .env(
                        "AWS_SESSION_TOKEN",
                        role.session_token.as_deref().unwrap_or_default(),
                    );
                own_group(&mut f);
                stack.children.push(
                    f.spawn()
                        .map_err(|e| format!("start function {name}: {e}"))?,
                );
            }
        }
        wait_for_port(proxy_port, "the Lambda proxy", Duration::from_secs(30))?;
        // Real ASL interpretation, Lambda via HTTP; then every request is checked by IAM.
        stack.moto_api(
            "config",
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
        )?;
        stack.moto_api("reset-auth", "0")?;
        Ok(stack)
    }

    fn role_of(&self, function: &str) -> Result<&Principal, String> {
        self.roles
            .iter()
            .find(|(f, _)| f == function)
            .map(|(_, p)| p)
            .ok_or_else(|| format!("no role for function {function}"))
    }

    /// POSTs `body` to moto's `/moto-api/<what>`.
    fn moto_api(&self, what: &str, body: &str) -> Result<(), String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.moto_port))
            .map_err(|e| e.to_string())?;
        use std::io::{Read, Write};
        write!(
            s,
            "POST /moto-api/{what} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
        let status = reply.split_whitespace().nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            return Err(format!("moto refused /moto-api/{what}: {reply}"));
        }
        Ok(())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto_port)
    }

    /// The SDK configuration for the emulator, as the test's operator (all actions).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        let p = &self.operator;
        let creds = aws_sdk_s3::config::Credentials::new(
            &p.access_key_id,
            &p.secret_access_key,
            p.session_token.clone(),
            None,
            "snap2dsql-tests-operator",
        );
        crate::emulator_config(&self.endpoint())
            .into_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(creds))
            .build()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk_config())
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk_config())
    }

    /// The state machine's name, as the template names it.
    pub fn state_machine_name(&self) -> String {
        format!("{STACK_NAME}-migrate")
    }

    /// The role the state machine runs as (the template's `MigrateStateMachineRole`).
    pub fn state_machine_role_arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/MigrateStateMachineRole")
    }

    /// The ASL definition with the SAM substitutions filled with local values.
    pub fn definition(&self, bucket: &str, load_concurrency: u32) -> String {
        let mut asl = std::fs::read_to_string(repo_root().join("statemachine/migrate.asl.json"))
            .expect("read statemachine/migrate.asl.json");
        for (name, placeholder) in FUNCTIONS {
            asl = asl.replace(
                &format!("${{{placeholder}}}"),
                &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{name}"),
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
