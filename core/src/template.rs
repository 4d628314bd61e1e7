//! The workflow template (http-api.md §4.4): the step layout of a completed run, with steps that
//! overlapped in time grouped as parallel.

use serde_json::{json, Map, Value};

/// A step of the template's source run: name and times in microseconds.
#[derive(Debug, Clone)]
pub struct TemplateStep {
    pub name: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// Orders the source run's steps (creation order) into sequential orders and parallel groups.
pub fn template_steps(steps: &[TemplateStep]) -> Vec<Value> {
    let mut out: Vec<Map<String, Value>> = Vec::with_capacity(steps.len());
    let (mut order, mut group, mut horizon) = (1i64, 1i64, i64::MIN);
    for (i, s) in steps.iter().enumerate() {
        let start = s.started_at.unwrap_or(s.created_at);
        let end = s.completed_at.or(s.started_at).unwrap_or(s.created_at);
        let mut item = Map::new();
        item.insert("stepName".into(), json!(s.name));
        if i > 0 && start < horizon {
            item.insert("order".into(), json!(order));
            item.insert("parallelGroup".into(), json!(group));
            if let Some(prev) = out.last_mut() {
                prev.insert("parallelGroup".into(), json!(group));
            }
        } else {
            if i > 0 {
                order += 1;
                group += 1;
            }
            item.insert("order".into(), json!(order));
        }
        horizon = horizon.max(end);
        out.push(item);
    }
    out.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_groups_overlapping_steps() {
        let s = |name: &str, start: i64, end: i64| TemplateStep {
            name: name.into(),
            created_at: start,
            started_at: Some(start),
            completed_at: Some(end),
        };
        let got = template_steps(&[s("a", 0, 10), s("b", 20, 30), s("c", 25, 40), s("d", 50, 60)]);
        assert_eq!(
            got,
            vec![
                json!({"stepName": "a", "order": 1}),
                json!({"stepName": "b", "order": 2, "parallelGroup": 2}),
                json!({"stepName": "c", "order": 2, "parallelGroup": 2}),
                json!({"stepName": "d", "order": 3}),
            ]
        );
        assert_eq!(template_steps(&[]), Vec::<Value>::new());
    }
}
