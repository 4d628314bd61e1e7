use super::*;
use serde_json::json;

/// What devalue 5's `stringify` writes for these values (read off the installed package).
#[test]
fn stringify_writes_what_devalue_writes() {
    for (value, devalue) in [
        (json!([4]), r#"[[1],4]"#),
        (json!({"a": 1, "b": [1, "x", "x"], "c": null, "d": true}), r#"[{"a":1,"b":2,"c":4,"d":5},1,[1,3,3],"x",null,true]"#),
        (json!([]), r#"[[]]"#),
        (json!({}), r#"[{}]"#),
        (json!("solo"), r#"["solo"]"#),
        (json!([[1, 2], [3]]), r#"[[1,4],[2,3],1,2,[5],3]"#),
        (json!([1, 1, 1]), r#"[[1,1,1],1]"#),
    ] {
        assert_eq!(stringify(&value).as_deref(), Ok(devalue), "{value}");
        assert_eq!(parse(devalue), Ok(value), "{devalue}");
    }
}

#[test]
fn parse_reads_devalue_types_as_json_stringify_would_write_them() {
    let devalue =
        r#"[[1,-1,-3,-6,-4,2,3,5,8],["Date","2024-01-02T03:04:05.000Z"],["BigInt","10"],["Set",4],1,["Map",6,7],"k",2,["null"]]"#;
    assert_eq!(parse(devalue), Ok(json!(["2024-01-02T03:04:05.000Z", null, null, 0, null, 10, [1], {"k": 2}, {}])));
    assert_eq!(parse(r#"[{"u":-1,"v":1},1]"#), Ok(json!({"v": 1})), "undefined members are left out");
    assert_eq!(parse("-1"), Ok(Value::Null));
    assert_eq!(parse(r#"[["BigInt","123456789012345678901234567890"]]"#), Ok(json!("123456789012345678901234567890")));
}

#[test]
fn what_json_cannot_hold_is_refused_by_name() {
    let err = |s: &str| parse(s).err().unwrap_or_default();
    assert!(err(r#"[["ReadableStream",1],{}]"#).contains("ReadableStream"));
    assert!(err(r#"[[0]]"#).contains("refers to itself"));
    assert!(err(r#"[[5]]"#).contains("out of range"));
    assert!(err(r#"[["Map",1,2],3,"v",1]"#).contains("keys that are not strings"));
    assert!(err("[]").contains("non-empty"));
    assert!(err("{").contains("not devalue"));
    let deep = (0..200).fold(json!(1), |v, _| json!([v]));
    assert!(stringify(&deep).is_err(), "nesting is bounded");
    let deep_devalue = format!("[{}1]", (1..=200).map(|i| format!("[{i}],")).collect::<String>());
    assert!(err(&deep_devalue).contains("deeper"));
}
