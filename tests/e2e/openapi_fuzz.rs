//! The gateway checked from outside by an OpenAPI-driven fuzzer: Schemathesis
//! reads the live `/openapi.json` of a whole deployment and sends what the
//! document allows (positive), what it forbids (negative), and chains of
//! calls that feed one answer into the next request (stateful), once with a
//! customer's token and once with an admin's. Every check must pass: no 5xx;
//! every status, content type, header and body as documented; every
//! schema-valid request accepted and every invalid one refused; no route
//! that ignores its token.
//!
//! Schemathesis is installed by this test into its own virtual environment
//! under `target/openapi-fuzz/` (pinned, kept between runs); a clean clone
//! installs it from PyPI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chorus_tests::describe;
use chorus_tests::saga::Saga;

/// The pinned release: a newer one may add checks, so it is taken on purpose.
const SCHEMATHESIS: &str = "4.32.5";
/// Cases per operation and phase: about 30 s a token on two cores.
const EXAMPLES: &str = "100";

/// Refusals of schema-valid requests that depend on state no schema can
/// describe; every other 4xx to a schema-valid request still fails.
const CHECKS_PY: &str = r#"
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _refused_for_state(response):
    if response.status_code not in (400, 422):
        return False
    try:
        error = response.json()["error"]
    except Exception:
        return False
    if response.status_code == 400:
        # A list cursor is opaque: only a `next` the list returned is one.
        return error.get("code") == "invalid_field" and error.get("field") == "cursor"
    # The Idempotency-Key was used before with another body.
    return error.get("code") == "idempotency_key_reused"


@schemathesis.check
def schema_valid_request_accepted(ctx, response, case):
    """positive_data_acceptance, but for a forged cursor and a reused key."""
    if _refused_for_state(response):
        return None
    return positive_data_acceptance(ctx, response, case)
"#;

#[tokio::test]
async fn the_gateway_does_what_its_openapi_document_says() {
    let fuzzer = tokio::task::spawn_blocking(Fuzzer::installed)
        .await
        .unwrap();
    let saga = Saga::start().await;
    for (role, subject) in [("customer", "fuzz-customer"), ("admin", "fuzz-admin")] {
        let (fuzzer, url, token) = (
            fuzzer.clone(),
            saga.gateway_url.clone(),
            saga.token(subject, role),
        );
        let output = tokio::task::spawn_blocking(move || fuzzer.run(&url, role, &token))
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "Schemathesis, with a {role} token, found the gateway failing or \
             disagreeing with its OpenAPI document (its report below; gateway log: {})\n{}",
            saga.log_file("gateway").display(),
            describe(&output)
        );
        let report = String::from_utf8_lossy(&output.stdout);
        println!("{role}: {}", report.lines().last().unwrap_or_default());
    }
}

/// Schemathesis in its virtual environment, and where its runs keep their files.
#[derive(Clone)]
struct Fuzzer {
    dir: PathBuf,
    schemathesis: PathBuf,
}

impl Fuzzer {
    /// The pinned Schemathesis, installed first if this target has none.
    fn installed() -> Fuzzer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/openapi-fuzz");
        let venv = dir.join(format!("schemathesis-{SCHEMATHESIS}"));
        let schemathesis = venv.join("bin/schemathesis");
        // Written last: a venv without it was cut short and is made again.
        let complete = venv.join("installed");
        if !complete.exists() {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::create_dir_all(&dir).unwrap();
            install(&venv);
            std::fs::write(&complete, SCHEMATHESIS).unwrap();
        }
        std::fs::write(dir.join("chorus_checks.py"), CHECKS_PY).unwrap();
        Fuzzer { dir, schemathesis }
    }

    /// One run of every phase against the gateway's `/v1/` operations (the
    /// operator routes take no input), as `role`.
    fn run(&self, gateway_url: &str, role: &str, token: &str) -> Output {
        let work = self.dir.join(role);
        std::fs::create_dir_all(&work).unwrap();
        // The token reaches Schemathesis through its environment, not its command line.
        let config = work.join("schemathesis.toml");
        std::fs::write(
            &config,
            format!(
                "hooks = \"{}\"\n\
                 [auth.openapi.bearer]\n\
                 bearer = \"${{FUZZ_BEARER_TOKEN}}\"\n",
                self.dir.join("chorus_checks.py").display()
            ),
        )
        .unwrap();
        let mut command = Command::new(&self.schemathesis);
        command
            .current_dir(&work)
            .env("FUZZ_BEARER_TOKEN", token)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{gateway_url}/openapi.json")])
            .args(["--include-path-regex", "^/v1/"])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--checks", "all"])
            // Replaced by schema_valid_request_accepted (CHECKS_PY).
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--max-examples", EXAMPLES])
            // A long-poll may take its 30 s.
            .args(["--request-timeout", "45"])
            // Two workers have crashed CPython 3.11's parser ("AST constructor
            // recursion depth mismatch"): Hypothesis parses from each thread.
            .args(["--workers", "1"])
            .arg("--no-color");
        run_for(&mut command, "Schemathesis")
    }
}

/// A virtual environment at `venv` holding the pinned Schemathesis.
fn install(venv: &Path) {
    let created = run_for(
        Command::new("python3").arg("-m").arg("venv").arg(venv),
        "python3",
    );
    assert!(
        created.status.success(),
        "the fuzzer needs Python's venv module: install it (Debian/Ubuntu: \
         `apt-get install python3-venv`)\n{}",
        describe(&created)
    );
    let pip = run_for(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={SCHEMATHESIS}")),
        "pip",
    );
    assert!(
        pip.status.success(),
        "installing schemathesis=={SCHEMATHESIS} from PyPI failed (this test needs \
         to reach the package index once per target directory)\n{}",
        describe(&pip)
    );
}

/// Runs `command`, failing with what to install when its program is missing.
fn run_for(command: &mut Command, program: &str) -> Output {
    command.output().unwrap_or_else(|e| {
        panic!(
            "running {program}: {e}; the fuzzer needs Python 3 with its venv module \
             (Debian/Ubuntu: `apt-get install python3 python3-venv`)"
        )
    })
}
