//! The definition and the template read statically: redrive structure and task timeouts, the
//! export-completed rule's pattern, the snapshot role's scope.

use super::*;

#[test]
fn the_state_machine_can_be_redriven_and_times_tasks_out_before_their_functions() {
    use snap2dsql::pipeline::contract::{DEFAULT_CHUNK_TIMEOUT_SECONDS, MAX_CHUNK_TIMEOUT_SECONDS};
    let asl: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            snap2dsql_tests::stack::repo_root().join("statemachine/migrate.asl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let resources = template()["Resources"].clone();
    // ${XFunctionArn} -> the function's Timeout in the template.
    let function_timeout = |resource: &str| -> u64 {
        let logical = resource
            .trim_start_matches("${")
            .trim_end_matches("Arn}")
            .to_string();
        resources[&logical]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or_else(|| panic!("{logical} has no Timeout"))
    };
    // Every state, the Distributed Map's inner states included.
    let mut states: Vec<(String, serde_json::Value)> = Vec::new();
    let mut queue = vec![asl["States"].clone()];
    while let Some(group) = queue.pop() {
        for (name, s) in group.as_object().unwrap() {
            if let Some(inner) = s.get("ItemProcessor").or_else(|| s.get("Iterator")) {
                queue.push(inner["States"].clone());
            }
            states.push((name.clone(), s.clone()));
        }
    }
    let fail_states: Vec<&str> = states
        .iter()
        .filter(|(_, s)| s["Type"] == "Fail")
        .map(|(n, _)| n.as_str())
        .collect();
    let mut tasks = 0;
    for (name, s) in &states {
        // Redrive restarts at the failed state: no Catch may move a failure into a Fail state.
        for c in s["Catch"].as_array().into_iter().flatten() {
            assert!(
                !fail_states.contains(&c["Next"].as_str().unwrap_or_default()),
                "{name} catches {} into a Fail state: a redrive would fail there again",
                c["ErrorEquals"]
            );
        }
        if s["Type"] != "Task" {
            continue;
        }
        tasks += 1;
        let limit = function_timeout(s["Resource"].as_str().unwrap());
        let timeout = match (
            s["TimeoutSeconds"].as_u64(),
            s["TimeoutSecondsPath"].as_str(),
        ) {
            (Some(t), None) => t,
            (None, Some("$.timeout_seconds")) => {
                // The chunk items carry chunk_timeout_seconds: its default and its bound.
                assert_eq!(
                    asl["States"]["Defaults"]["Parameters"]["chunk_timeout_seconds"],
                    DEFAULT_CHUNK_TIMEOUT_SECONDS
                );
                MAX_CHUNK_TIMEOUT_SECONDS
            }
            other => panic!("{name}: no usable task timeout: {other:?}"),
        };
        assert!(
            timeout < limit,
            "{name}: task timeout {timeout} s is not below its function's {limit} s"
        );
        let retried: Vec<&str> = s["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
            .filter_map(|e| e.as_str())
            .collect();
        for e in ["States.Timeout", "Sandbox.Timedout"] {
            assert!(
                retried.contains(&e),
                "{name} does not retry {e}: {retried:?}"
            );
        }
    }
    assert_eq!(tasks, 9, "nine tasks over the five functions");
}

/// EventBridge's content filtering, as documented ("Content filtering in Amazon EventBridge
/// event patterns"): every field of the pattern must match; a list matches when any of its
/// values or filters does; a missing field matches nothing but `{"exists": false}`.
fn pattern_matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    use serde_json::Value;
    fn one(rule: &Value, value: Option<&Value>) -> bool {
        match rule {
            Value::Object(f) => {
                if let Some(exists) = f.get("exists") {
                    return exists.as_bool() == Some(value.is_some());
                }
                let Some(v) = value else { return false };
                if let Some(p) = f.get("prefix") {
                    return matches!((v, p), (Value::String(s), Value::String(p)) if s.starts_with(p.as_str()));
                }
                if let Some(but) = f.get("anything-but") {
                    return match but {
                        Value::Array(values) => !values.contains(v),
                        Value::Object(inner) => match (inner.get("prefix"), v) {
                            (Some(Value::String(p)), Value::String(s)) => {
                                !s.starts_with(p.as_str())
                            }
                            _ => false,
                        },
                        other => other != v,
                    };
                }
                panic!("filter {rule} is not implemented here")
            }
            literal => match value {
                Some(Value::Array(items)) => items.contains(literal),
                Some(v) => v == literal,
                None => false,
            },
        }
    }
    pattern.as_object().unwrap().iter().all(|(k, p)| match p {
        Value::Object(_) => event.get(k).is_some_and(|e| pattern_matches(p, e)),
        Value::Array(rules) => rules.iter().any(|r| one(r, event.get(k))),
        _ => panic!("pattern field {k} is neither a list nor an object"),
    })
}

#[test]
fn the_export_completed_rule_ignores_the_pipelines_own_snapshots() {
    let t = template();
    let rule = &t["Resources"]["ExportCompletedRule"]["Properties"];
    let pattern = &rule["EventPattern"];
    // RDS-EVENT-0164 as RDS sends it to EventBridge.
    let event = |source_arn: &str, event_id: &str, account: &str| {
        serde_json::json!({
            "version": "0", "id": "c2b6a6c1-0000-0000-0000-000000000000",
            "detail-type": "RDS DB Cluster Snapshot Event", "source": "aws.rds",
            "account": account, "time": "2026-11-25T10:00:00Z", "region": "us-east-1",
            "resources": [source_arn],
            "detail": {
                "EventCategories": ["notification"], "SourceType": "CLUSTER_SNAPSHOT",
                "SourceArn": source_arn,
                "Date": "2026-11-25T10:00:00.000Z",
                "Message": "Export task completed.",
                "SourceIdentifier": source_arn.rsplit(':').next().unwrap(),
                "EventID": event_id
            }
        })
    };
    let arn = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{id}");
    let cases = [
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0164", "123456789012"),
            true,
        ),
        // The pipeline's own snapshot: the execution that made it loads it.
        (
            event(
                &arn(&rds_id("storefront-1")),
                "RDS-EVENT-0164",
                "123456789012",
            ),
            false,
        ),
        // Another event of a cluster snapshot (export started, snapshot created, ...).
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0161", "123456789012"),
            false,
        ),
        // Another account's event on a shared bus.
        (
            event(&arn("storefront-nightly"), "RDS-EVENT-0164", "210987654321"),
            false,
        ),
    ];
    for (e, want) in &cases {
        assert_eq!(
            pattern_matches(pattern, e),
            *want,
            "pattern {pattern} on {}",
            e["detail"]
        );
    }
    // The execution gets the snapshot's ARN, the event-path entry point.
    let target = &rule["Targets"][0]["InputTransformer"];
    assert_eq!(target["InputPathsMap"]["source_arn"], "$.detail.SourceArn");
    assert_eq!(
        target["InputTemplate"],
        r#"{"export_source_arn": <source_arn>}"#
    );
}

#[test]
fn the_snapshot_role_snapshots_and_exports_only_what_it_should() {
    // The real documents (not moto's view of them), evaluated with IAM's matching rules for
    // Action and Resource; a statement with a Condition allows only when the condition holds,
    // which here is "the cluster or snapshot carries snap2dsql-source=true" (`tagged`).
    let t = template();
    let docs = t["Resources"]["SnapshotRole"]["Properties"]["Policies"].clone();
    let glob = |pattern: &str, value: &str| {
        let mut rest = value;
        let parts: Vec<&str> = pattern.split('*').collect();
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                match rest.strip_prefix(part) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i == parts.len() - 1 {
                return rest.ends_with(part);
            } else {
                match rest.find(part) {
                    Some(at) => rest = &rest[at + part.len()..],
                    None => return false,
                }
            }
        }
        rest.is_empty()
    };
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => {
                a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
            }
            s => vec![s.as_str().unwrap().to_string()],
        }
    };
    let allowed = |action: &str, resource: &str, tagged: bool| {
        docs.as_array().unwrap().iter().any(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| {
                    s["Effect"] == "Allow"
                        && list(&s["Action"]).iter().any(|a| glob(a, action))
                        && list(&s["Resource"]).iter().any(|r| glob(r, resource))
                        && (s.get("Condition").is_none() || tagged)
                })
        })
    };
    let cluster = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}");
    let snapshot = |id: &str| format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{id}");
    let own = rds_id("storefront-1");
    let create = "rds:CreateDBClusterSnapshot";
    let export = "rds:StartExportTask";
    assert!(allowed(create, &cluster(CLUSTER), false));
    assert!(allowed(create, &snapshot(&own), false));
    assert!(!allowed(create, &cluster("payroll-prod"), false));
    assert!(allowed(create, &cluster("payroll-prod"), true));
    assert!(!allowed(create, &snapshot("payroll-manual"), true));
    assert!(allowed(export, &snapshot(&own), false));
    assert!(!allowed(export, &snapshot("payroll-manual"), false));
    assert!(allowed(export, &snapshot("payroll-manual"), true));
    assert!(!allowed(export, &cluster(CLUSTER), false));
    assert!(!allowed(
        "rds:DeleteDBClusterSnapshot",
        &snapshot(&own),
        true
    ));
}
