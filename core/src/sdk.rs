//! What starting and resuming a workflow from SQL must know about the WDK that will run it: its
//! run spec version, which formats its `@workflow/core` version reads, and the arguments of
//! `workflow.start`.

use crate::error::{WfError, WfResult};
use serde_json::Value;

/// The oldest run spec version pgworld's event store takes (format-prefixed byte values).
pub const SPEC_MIN: i32 = 2;
/// From 3 on, workflow messages go over the queue as CBOR and carry the run's input.
pub const SPEC_CBOR_QUEUE: i32 = 3;
/// What a start assumes when nothing tells it the deployment's SDK (WDK 4.x writes 3).
pub const SPEC_DEFAULT: i32 = 3;
pub const SPEC_MAX: i32 = 5;
/// The first `@workflow/core` that reads encrypted (`encr`) values.
const ENCRYPTION_SINCE: &str = "4.2.0-beta.64";

/// Whether a run whose execution context names `core_version` reads encrypted values. An
/// unknown version reads only plain devalue, as the WDK itself decides.
pub fn reads_encrypted(core_version: Option<&str>) -> bool {
    let (Some(v), Ok(since)) = (core_version, semver::Version::parse(ENCRYPTION_SINCE)) else {
        return false;
    };
    semver::Version::parse(v.trim_start_matches('v')).is_ok_and(|v| v >= since)
}

/// The WDK's rule for workflow names (they become queue names).
pub fn valid_workflow_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 400 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-./@()[]".contains(c))
}

/// `workflow.start`'s options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StartOptions {
    pub deployment_id: Option<String>,
    pub spec_version: Option<i32>,
    pub core_version: Option<String>,
}

pub fn start_options(options: &Value) -> WfResult<StartOptions> {
    let Some(m) = options.as_object() else {
        return if options.is_null() {
            Ok(StartOptions::default())
        } else {
            Err(WfError::bad_request("options must be a JSON object"))
        };
    };
    let text = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= crate::queue::MAX_DEPLOYMENT_ID_BYTES => Ok(Some(s.clone())),
        Some(_) => Err(WfError::bad_request(format!("options.{k} must be a non-empty string"))),
    };
    let spec_version = match m.get("specVersion") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if (i64::from(SPEC_MIN)..=i64::from(SPEC_MAX)).contains(&n) => Some(n as i32),
            _ => {
                return Err(WfError::bad_request(format!("options.specVersion must be an integer from {SPEC_MIN} to {SPEC_MAX}")))
            }
        },
    };
    for k in m.keys() {
        if !["deploymentId", "specVersion", "workflowCoreVersion"].contains(&k.as_str()) {
            return Err(WfError::bad_request(format!("unknown option {k} (deploymentId, specVersion, workflowCoreVersion)")));
        }
    }
    Ok(StartOptions { deployment_id: text("deploymentId")?, spec_version, core_version: text("workflowCoreVersion")? })
}

/// The workflow's arguments: a JSON array.
pub fn start_input(input: &Value) -> WfResult<&Vec<Value>> {
    input.as_array().ok_or_else(|| WfError::bad_request("input must be a JSON array: the workflow's arguments"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encryption_follows_the_core_version() {
        assert!(
            reads_encrypted(Some("4.8.9")) && reads_encrypted(Some("5.0.0-beta.35")) && reads_encrypted(Some("4.2.0-beta.64"))
        );
        assert!(!reads_encrypted(Some("4.2.0-beta.63")) && !reads_encrypted(Some("4.1.0")));
        assert!(!reads_encrypted(None) && !reads_encrypted(Some("pgworld")));
    }

    #[test]
    fn workflow_names_and_options_are_checked() -> WfResult<()> {
        assert!(valid_workflow_name("workflow//./workflows/features//arithmetic"));
        assert!(!valid_workflow_name("") && !valid_workflow_name("a b") && !valid_workflow_name("x;drop"));
        assert_eq!(start_options(&json!({}))?, StartOptions::default());
        assert_eq!(start_options(&Value::Null)?, StartOptions::default());
        let o = start_options(&json!({"deploymentId": "v2", "specVersion": 5}))?;
        assert_eq!((o.deployment_id.as_deref(), o.spec_version), (Some("v2"), Some(5)));
        for bad in [
            json!([]),
            json!({"specVersion": 9}),
            json!({"specVersion": "3"}),
            json!({"deploymentId": ""}),
            json!({"deployment": "v"}),
        ] {
            assert!(start_options(&bad).is_err(), "{bad}");
        }
        assert!(start_input(&json!({"a": 1})).is_err() && start_input(&json!([1])).is_ok());
        Ok(())
    }
}
